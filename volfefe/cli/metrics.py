"""Evaluate a model on labelled posts: accuracy, per-class precision/recall/F1, confusion.

>>> report = score(["positive", "negative", "neutral"], ["positive", "neutral", "neutral"])
>>> report["accuracy"], report["per_class"]["neutral"]["recall"]
(0.6666666666666666, 1.0)
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from volfefe.errors import ConfigError
from volfefe.result import SENTIMENTS, Classification


def read_labelled_csv(path: Path) -> tuple[list[str], list[str]]:
    """Texts and gold labels from a CSV with columns `text,label` (labels in any case)."""
    texts: list[str] = []
    labels: list[str] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
            raise ConfigError(f"{path}: expected a header with columns text,label")
        for line, row in enumerate(reader, start=2):
            label = (row.get("label") or "").strip().lower()
            if label not in SENTIMENTS:
                raise ConfigError(
                    f"{path} line {line}: label must be positive, negative or neutral, "
                    f"got {row.get('label')!r}"
                )
            texts.append(row.get("text") or "")
            labels.append(label)
    return texts, labels


def score(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix.

    `confusion[g][p]` counts posts labelled `g` that the model called `p`.
    """
    confusion = {g: dict.fromkeys(SENTIMENTS, 0) for g in SENTIMENTS}
    for g, p in zip(gold, predicted, strict=True):
        confusion[g][p] += 1
    per_class = {}
    for label in SENTIMENTS:
        tp = confusion[label][label]
        predicted_n = sum(confusion[g][label] for g in SENTIMENTS)
        support = sum(confusion[label].values())
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    correct = sum(confusion[s][s] for s in SENTIMENTS)
    return {
        "n": len(gold),
        "accuracy": correct / len(gold) if gold else 0.0,
        "per_class": per_class,
        "confusion": confusion,
    }


def agreement(a: Sequence[Classification], b: Sequence[Classification]) -> dict[str, float]:
    """How often two models agree on the label, and the largest probability difference."""
    same = sum(x.sentiment == y.sentiment for x, y in zip(a, b, strict=True))
    max_dp = max(
        (
            abs(x.raw_scores[k] - y.raw_scores[k])
            for x, y in zip(a, b, strict=True)
            for k in x.raw_scores
        ),
        default=0.0,
    )
    return {"label_agreement": same / len(a) if a else 1.0, "max_abs_dp": max_dp}
