"""The ideal scheduler: what no real one can beat, replayed on a run's own arrivals.

Each post needs its text's bare inference time (measured alone, same backend and layout) on
one of `servers` identical children. The ideal scheduler runs, at every instant, the
`servers` most urgent posts present (lowest rank first, then first come): it preempts at
once and for free, never idles a child while a post waits, and costs nothing besides the
model (no database, no job queue, no pipe). A real scheduler with the same ranks on the same
arrivals is never faster for the most urgent class, so its ratios (p99 under load over idle
p99) bound what any implementation of the rule can reach: a goal the ideal misses on the
very arrivals of a run is out of reach for the rule, not for want of engineering.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Arrival:
    """One post: when it arrived and how much work it is (seconds), and its rank (0 first)."""

    at: float
    work: float
    rank: int


def ideal_sojourns(arrivals: Sequence[Arrival], servers: int) -> list[float]:
    """Each arrival's time from arrival to answer (seconds) under the ideal scheduler.

    Preemptive-resume priority by rank, first come first served within a rank, `servers`
    children each working on one post at a time.

    >>> long, short = Arrival(0.0, 1.0, rank=1), Arrival(0.5, 0.1, rank=0)
    >>> [round(s, 3) for s in ideal_sojourns([long, short], servers=1)]
    [1.1, 0.1]
    >>> [round(s, 3) for s in ideal_sojourns([long, short], servers=2)]
    [1.0, 0.1]
    """
    if servers < 1:
        raise ValueError("servers must be at least 1")
    order = sorted(range(len(arrivals)), key=lambda i: arrivals[i].at)
    left = [a.work for a in arrivals]
    sojourn = [0.0] * len(arrivals)
    present: list[tuple[int, float, int]] = []  # (rank, arrival, index): a heap
    now, nxt = 0.0, 0
    while nxt < len(order) or present:
        if not present:
            now = max(now, arrivals[order[nxt]].at)
        while nxt < len(order) and arrivals[order[nxt]].at <= now:
            i = order[nxt]
            heapq.heappush(present, (arrivals[i].rank, arrivals[i].at, i))
            nxt += 1
        running = heapq.nsmallest(servers, present)
        step = min(left[i] for _, _, i in running)
        if nxt < len(order):
            step = min(step, arrivals[order[nxt]].at - now)
        now += step
        for entry in running:
            i = entry[2]
            left[i] -= step
            if left[i] <= 1e-12:
                sojourn[i] = now - arrivals[i].at
                present.remove(entry)
        heapq.heapify(present)
    return sojourn
