"""The fault schedule: which fault, and when, drawn from `random.Random(seed)`.

The same seed, duration and fault kinds give the same schedule. Events are spread evenly
over the chaos phase with jitter; the first ones are a shuffled round of every kind, so a
short run still injects each kind once when it has room for it.

>>> [e.kind for e in draw_schedule(1, 60.0, ("kill-child", "restart-db"), interval=20.0)]
['restart-db', 'kill-child', 'kill-child']
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

FAULT_KINDS = (
    "kill-child",  # SIGKILL one volfefe child
    "hang-child",  # SIGSTOP one volfefe child (it never answers again)
    "garbage-child",  # SIGUSR1: the child writes a non-JSON line instead of its next reply
    "kill-worker",  # SIGKILL one job worker, start a new one
    "term-worker",  # SIGTERM one job worker (graceful stop), start a new one
    "restart-db",  # pg_ctl restart -m fast of the embedded server
    "pause-db",  # SIGSTOP the postmaster and its backends, later SIGCONT
    "close-under-load",  # Classifier.close() while threads call classify_many
    "partition-worker",  # drop every packet between the namespaced worker and PostgreSQL
)


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One scheduled fault: seconds after the chaos phase starts, its kind, and `pick` in
    [0, 1) to choose the target among those alive at that moment."""

    at: float
    kind: str
    pick: float


def parse_kinds(text: str) -> tuple[str, ...]:
    """`all` or a comma list of fault kinds; raises ValueError naming an unknown kind."""
    if text.strip() == "all":
        return FAULT_KINDS
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or not kinds:
        raise ValueError(
            f"unknown fault kind {', '.join(unknown) or '(none)'}; "
            f"choose from all, {', '.join(FAULT_KINDS)}"
        )
    return kinds


def draw_schedule(
    seed: int, duration: float, kinds: Sequence[str], *, interval: float
) -> list[FaultEvent]:
    """About one fault per `interval` seconds over `duration` seconds (at least one)."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible schedule, not a secret)
    count = max(1, round(duration / interval))
    order = list(kinds)
    rng.shuffle(order)
    while len(order) < count:
        order.append(rng.choice(list(kinds)))
    slot = duration / count
    return [
        FaultEvent(at=(i + rng.uniform(0.2, 0.8)) * slot, kind=kind, pick=rng.random())
        for i, kind in enumerate(order[:count])
    ]
