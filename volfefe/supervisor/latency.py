"""How long texts wait for their answer, by length class: short posts and long posts are
different customers, and an average hides what a long forward pass does to the short ones.

```
class    tokens      (counted with the model's tokenizer once the pool knows it)
short    <= 64       a tweet-sized post: the common case, the one a desk acts on
medium   65 .. 256
long     > 256
```
The pool observes each text of a call when the call is answered (queue wait included); a
cumulative histogram per class is read by /metrics (`volfefe_text_latency_seconds{length}`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

MEDIUM_TOKENS = 256  # the medium class's bound: a text over it is long
LENGTH_CLASSES = (("short", 64), ("medium", MEDIUM_TOKENS), ("long", None))
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def length_class(tokens: int) -> str:
    """The length class of a text of `tokens` tokens.

    >>> length_class(11), length_class(64), length_class(65), length_class(512)
    ('short', 'short', 'medium', 'long')
    """
    for name, most in LENGTH_CLASSES:
        if most is None or tokens <= most:
            return name
    raise AssertionError("the last class has no bound")


@dataclass
class Histogram:
    """Counts of observations per bucket (not cumulative), their count and sum."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or below it) per bucket, `+Inf` last: Prometheus'
        shape."""
        out, running = [], 0
        for bound, count in zip([*map(str, BUCKETS), "+Inf"], self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class LatencyByClass:
    """One histogram per length class; lives as long as the classifier (across rebuilds).

    >>> latency = LatencyByClass()
    >>> latency.observe(12, 0.02); latency.observe(300, 0.4)
    >>> latency.histograms["short"].cumulative()[2], latency.histograms["long"].total
    (('0.025', 1), 0.4)
    """

    def __init__(self) -> None:
        self.histograms = {name: Histogram() for name, _ in LENGTH_CLASSES}

    def observe(self, tokens: int, seconds: float) -> None:
        """Count a text of `tokens` tokens answered `seconds` after its call began."""
        self.histograms[length_class(tokens)].observe(seconds)
