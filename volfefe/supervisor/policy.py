"""The supervisor's rules as small pure pieces: the restart budget, backoffs, and what a
failure of a text sent alone means (poison)."""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable

from volfefe.errors import (
    CallTimeout,
    ConfigError,
    PoisonText,
    ProtocolError,
    WorkerBootError,
    WorkerCrashed,
    WorkerError,
    describe_exit,
)
from volfefe.protocol import EXIT_BOOT_FAILED


class RestartBudget:
    """At most `max_restarts` restarts in any `window` seconds.

    >>> clock = iter([0.0, 1.0, 2.0]).__next__
    >>> budget = RestartBudget(1, 10.0, clock)
    >>> budget.record(), budget.record()
    (True, False)
    """

    def __init__(
        self, max_restarts: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max = max_restarts
        self._window = window
        self._clock = clock
        self._times: deque[float] = deque()

    def record(self) -> bool:
        """Count one restart now; False when the budget is exceeded."""
        now = self._clock()
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()
        self._times.append(now)
        return len(self._times) <= self._max


def boot_backoff(failures: int) -> float:
    """Seconds before booting a slot's child again after `failures` failed boots (jittered).

    >>> boot_backoff(0), 0.025 <= boot_backoff(1) <= 0.075, boot_backoff(30) <= 3.0
    (0.0, True, True)
    """
    if failures <= 0:
        return 0.0
    return float(min(2.0, 0.05 * 2.0 ** (failures - 1)) * random.uniform(0.5, 1.5))  # noqa: S311


def rebuild_backoff(failures: int, base: float, cap: float) -> float:
    """Seconds before rebuilding a broken pool when `failures` rebuilds in a row failed.

    >>> [rebuild_backoff(n, 1.0, 5.0) for n in range(5)]
    [1.0, 2.0, 4.0, 5.0, 5.0]
    """
    return float(min(cap, base * 2 ** min(failures, 32)))


def is_impossible_boot(exc: BaseException | None) -> bool:
    """True when no child can ever start with these settings: a child (or the export) said so
    with exit status 3, or preparing the children refused the settings (ConfigError, say a
    backend whose runtime is not installed)."""
    if isinstance(exc, ConfigError):
        return True
    return isinstance(exc, WorkerBootError) and exc.returncode == EXIT_BOOT_FAILED


def poison_from(exc: WorkerError) -> PoisonText:
    """The PoisonText for a text that, sent alone, made a child fail with `exc` (its cause).

    >>> poison_from(CallTimeout(2.0, pid=9)).reason
    'hung: no answer within 2 s'
    """
    if isinstance(exc, WorkerCrashed):
        reason = f"crashed the child: {describe_exit(exc.returncode)}"
    elif isinstance(exc, CallTimeout):
        reason = f"hung: no answer within {exc.timeout:g} s"
    elif isinstance(exc, ProtocolError):
        reason = "garbled: the child's reply was not valid"
    else:
        reason = f"failed the child: {type(exc).__name__}"
    child = "a child" if exc.pid is None else f"a child (pid {exc.pid})"
    poison = PoisonText(
        f"this text, sent alone, made {child} fail ({reason}); it is not sent again by itself",
        reason=reason,
    )
    poison.__cause__ = exc
    return poison
