"""Percentiles and ratios, as every suite computes them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation, like numpy's default.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50), percentile([1.0, 2.0, 3.0, 4.0], 95)
    (2.5, 3.85)
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by nearest rank (a value that occurred), None when empty.

    >>> nearest_rank([1.0, 2.0, 3.0, 4.0], 50), nearest_rank([1.0, 2.0, 3.0, 4.0], 99)
    (2.0, 4.0)
    """
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def median_or_none(values: Sequence[float], digits: int = 2) -> float | None:
    """The median rounded to `digits`, or None when there are no values.

    >>> median_or_none([3.0, 1.0, 2.0]), median_or_none([])
    (2.0, None)
    """
    return round(statistics.median(values), digits) if values else None


def ratio(value: float | None, base: float | None) -> float | None:
    """value / base, or None when either is missing or base is 0.

    >>> ratio(3.0, 2.0), ratio(None, 2.0), ratio(1.0, 0.0)
    (1.5, None, None)
    """
    if value is None or not base:
        return None
    return value / base
