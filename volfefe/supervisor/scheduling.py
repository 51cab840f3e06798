"""Which waiting request a free child's next call is built around (its *anchor*), and whether
this child may take it: the queue's order (batching.py gathers the rest of the call).

A BERT forward pass cannot be interrupted, so a short post that arrives while long ones run
waits for their whole pass. Two rules, each off by default, keep short posts from waiting
behind long ones:

```
VOLFEFE_SCHEDULE=shortest  the anchor is the request with the fewest tokens per text (the
                           oldest among equals) instead of the oldest one
VOLFEFE_SHORT_RESERVE=K    a request of long texts (> VOLFEFE_SHORT_TOKENS per text) is an
                           anchor only while more than K children are idle: K stay free for
                           the short posts that may arrive while it runs; a child that may
                           not take it takes a short request, or waits (no polling) for the
                           next arrival or for the long one to age
VOLFEFE_SCHEDULE_AGING     under either rule, a request that has waited this long goes first,
                           to whichever child is free: none starves, and a backlog of long
                           posts still keeps every child busy
```

Tokens per text is the order that minimises the texts' mean wait when a call costs about
its tokens (Smith's rule: cost over the texts answered). Under either rule, and with
preemption between layers (VOLFEFE_PREEMPT=layers, whose express calls take short requests,
or medium ones behind a long call, one kind per call), a call holds one kind of request,
short or not, so a short post never waits for a long one's pass in its own call. Retries
of a trial (trial.py) are not scheduled here: they go first, alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from volfefe.config import Settings


class Waiting(Protocol):
    """What the schedule reads of a waiting request (batching.Request)."""

    texts: list[str]
    tokens: int
    queued_at: float  # when it was queued, on the queue's clock


W = TypeVar("W", bound=Waiting)


def per_text(request: Waiting) -> float:
    """A request's tokens per text: the length of its texts (a caller's texts are cut
    shortest first, so a request holds texts of like length).

    >>> from types import SimpleNamespace as R
    >>> per_text(R(texts=["a", "b"], tokens=30, queued_at=0.0))
    15.0
    """
    return request.tokens / max(1, len(request.texts))


@dataclass(frozen=True)
class Schedule:
    """The rules in force (the module's docstring); the default is first come, first served.

    >>> Schedule().by_length, Schedule(shortest=True).by_length, Schedule(preempt=True).by_length
    (False, True, True)
    """

    shortest: bool = False
    aging: float = 0.1
    reserve: int = 0
    short_tokens: int = 64
    preempt: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Schedule:
        """The rules `settings` ask for; at most workers - 1 children are kept for short posts
        (a pool of one child keeps none).

        >>> Schedule.from_settings(Settings(workers=1, short_reserve=1)).reserve
        0
        """
        return cls(
            shortest=settings.schedule == "shortest",
            aging=settings.schedule_aging,
            reserve=min(settings.short_reserve, settings.workers - 1),
            short_tokens=settings.short_tokens,
            preempt=settings.preempt == "layers",
        )

    @property
    def by_length(self) -> bool:
        """True when a rule or preemption is on: the queue then asks `choose`, and a call
        holds one kind."""
        return self.shortest or self.reserve > 0 or self.preempt

    def is_short(self, request: Waiting) -> bool:
        """True for a request of short posts."""
        return per_text(request) <= self.short_tokens

    def choose(self, waiting: Sequence[W], now: float, idle: float) -> tuple[W | None, float]:
        """The anchor for a free child while `idle` children (this one included; `math.inf`
        when the pool drains, so none is kept) wait for work; else None and the seconds
        until a waiting request may go (`math.inf`: not before the next arrival).

        >>> from types import SimpleNamespace as R
        >>> long = R(texts=["l"], tokens=300, queued_at=0.0)
        >>> short = R(texts=["s"], tokens=9, queued_at=0.05)
        >>> Schedule(shortest=True).choose([long, short], now=0.06, idle=1)[0] is short
        True
        >>> Schedule(shortest=True).choose([long, short], now=0.1, idle=1)[0] is long  # aged
        True
        >>> anchor, wake = Schedule(reserve=1).choose([long], now=0.06, idle=1)
        >>> anchor, round(wake, 3)  # the last idle child waits, at most till the long one ages
        (None, 0.04)
        """
        if not waiting:
            return None, math.inf
        oldest = min(waiting, key=lambda r: r.queued_at)
        if now - oldest.queued_at >= self.aging:
            return oldest, math.inf
        anchor = min(waiting, key=per_text) if self.shortest else waiting[0]
        if idle > self.reserve or self.is_short(anchor):
            return anchor, math.inf
        shorts = [r for r in waiting if self.is_short(r)]
        if shorts:
            return (min(shorts, key=per_text) if self.shortest else shorts[0]), math.inf
        return None, oldest.queued_at + self.aging - now  # > 0: the oldest has not aged
