"""The accuracy guard: how far a quantised model strays from its fp32 reference.

Two figures, the same ones `volfefe eval --compare` prints: the share of texts whose label
is unchanged (`label_agreement`) and the largest difference of any class probability on any
text (`max_abs_dp`). A quantised export is installed only when both are within bounds.

>>> figures = compare([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1]], [[0.6, 0.3, 0.1], [0.5, 0.4, 0.1]])
>>> figures.label_agreement, round(figures.max_abs_dp, 3)
(0.5, 0.1)
>>> figures.passes(min_agreement=0.5, max_dp=0.1)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_MIN_AGREEMENT = 0.97
DEFAULT_MAX_DP = 0.2


@dataclass(frozen=True)
class GuardFigures:
    """Label agreement and largest probability difference on `n` held-out texts."""

    n: int
    label_agreement: float
    max_abs_dp: float

    def passes(self, *, min_agreement: float, max_dp: float) -> bool:
        """True when both figures are within the thresholds (a small float slack on dp)."""
        return self.label_agreement >= min_agreement and self.max_abs_dp <= max_dp + 1e-9

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready values."""
        return asdict(self)


def compare(reference: Sequence[Sequence[float]], other: Sequence[Sequence[float]]) -> GuardFigures:
    """Figures of `other` against `reference`: rows of class probabilities, same order."""
    if len(reference) != len(other) or not reference:
        raise ValueError("compare needs the same, non-zero number of rows on both sides")
    same = 0
    worst = 0.0
    for ref, got in zip(reference, other, strict=True):
        same += _argmax(ref) == _argmax(got)
        worst = max(worst, *(abs(a - b) for a, b in zip(ref, got, strict=True)))
    return GuardFigures(len(reference), same / len(reference), worst)


def _argmax(row: Sequence[float]) -> int:
    return max(range(len(row)), key=row.__getitem__)
