"""How long a failing sink waits before the next try: exponential, capped, jittered.

The n-th failure in a row waits between half and all of `min(first x 2^(n-1), cap)` seconds
("equal jitter"), so sinks that failed together do not retry together.

>>> import random
>>> [round(retry_delay(n, 1.0, 60.0, random.Random(0)), 3) for n in (1, 2, 3, 10)]
[0.922, 1.844, 3.689, 55.333]
"""

from __future__ import annotations

import random


def retry_delay(failures: int, first: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after `failures` (>= 1) failed deliveries in a row."""
    ceiling = min(cap, first * 2.0 ** min(max(failures, 1) - 1, 62))
    draw = (rng or random).random()
    return ceiling / 2 + draw * ceiling / 2
