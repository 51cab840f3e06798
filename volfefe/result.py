"""`Classification`: what classifying one text gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from volfefe.protocol import SENTIMENTS

__all__ = ["SENTIMENTS", "Classification"]


@dataclass(frozen=True, slots=True)
class Classification:
    """The financial sentiment of one text.

    >>> c = Classification("positive", 0.9, "m@1", {"positive": 0.9, "negative": 0.05,
    ...                    "neutral": 0.05})
    >>> c.sentiment, c.truncated
    ('positive', False)
    """

    sentiment: str
    confidence: float
    model_version: str
    raw_scores: dict[str, float] = field(default_factory=dict)
    truncated: bool = False
    tokens: int = 0

    def meta(self) -> dict[str, Any]:
        """The `meta` object stored with a result: raw scores, truncation and token count."""
        return {"raw_scores": self.raw_scores, "truncated": self.truncated, "tokens": self.tokens}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict in the one-shot worker's shape (sentiment, confidence, ..., meta)."""
        return {
            "sentiment": self.sentiment,
            "confidence": self.confidence,
            "model_version": self.model_version,
            "meta": self.meta(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Classification:
        """Inverse of `to_dict` (also accepts the flat `asdict` form)."""
        meta = data.get("meta", data)
        return cls(
            sentiment=data["sentiment"],
            confidence=float(data["confidence"]),
            model_version=data["model_version"],
            raw_scores={k: float(v) for k, v in meta.get("raw_scores", {}).items()},
            truncated=bool(meta.get("truncated", False)),
            tokens=int(meta.get("tokens", 0)),
        )
