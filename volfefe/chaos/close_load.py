"""The in-process fault: close a `Classifier` while threads are calling it.

```
threads 1..N: classify_many(texts) in a loop ─┐
one child frozen with SIGSTOP (a stuck call)  ├─ close() ─> every call ends with a result
                                              ┘             or a typed error by its deadline
```
The deadline of a call that is running when `close()` starts is the shutdown grace plus
one call timeout plus a margin: after that the caller must have its answer.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field

from volfefe.chaos.procs import signal_quietly
from volfefe.config import Settings
from volfefe.errors import VolfefeError
from volfefe.supervisor.classifier import Classifier

CALLERS = 3
MARGIN = 10.0  # seconds on top of grace + call timeout
TEXTS = ["Stocks rally as the trade deal is signed", "Tariffs hit exporters hard"] * 4


@dataclass
class CloseOutcome:
    """What one close-under-load did: calls ended, calls still blocked, errors (untyped
    errors of callers, or a classifier that did not start)."""

    froze_child: bool
    calls: int = 0
    blocked: int = 0
    seconds: float = 0.0  # from close() until every caller had its answer (or the deadline)
    errors: list[str] = field(default_factory=list)


def close_under_load(settings: Settings, load_for: float) -> CloseOutcome:
    """Start a classifier, load it from CALLERS threads for `load_for` seconds, freeze a
    child, close it."""
    outcome = CloseOutcome(froze_child=False)
    clf = Classifier(settings)
    try:
        clf.start()
    except VolfefeError as exc:
        clf.close()
        outcome.errors.append(f"the classifier did not start: {type(exc).__name__}: {exc}")
        return outcome
    lock = threading.Lock()

    def call_until_closed() -> None:
        while True:
            try:
                clf.classify_many(TEXTS, return_exceptions=True)
            except VolfefeError:
                return  # typed: PoolClosed, PoolBroken... the contract holds
            except Exception as exc:  # an untyped error is what this fault looks for
                with lock:
                    outcome.errors.append(f"untyped error {type(exc).__name__}: {exc}")
                return
            finally:
                with lock:
                    outcome.calls += 1

    callers = [threading.Thread(target=call_until_closed, daemon=True) for _ in range(CALLERS)]
    for thread in callers:
        thread.start()
    time.sleep(load_for)  # let the load build up: part of the fault's pacing
    pids = clf.pids()
    if pids:
        outcome.froze_child = signal_quietly(pids[0], signal.SIGSTOP)
    closing = time.monotonic()
    closer = threading.Thread(target=clf.close, daemon=True)
    closer.start()
    deadline = time.monotonic() + settings.shutdown_grace + settings.call_timeout + MARGIN
    for thread in [*callers, closer]:
        thread.join(max(0.0, deadline - time.monotonic()))
    outcome.blocked = sum(t.is_alive() for t in callers) + closer.is_alive()
    outcome.seconds = round(time.monotonic() - closing, 2)
    if outcome.blocked:  # leave no child behind a stuck classifier for the rest of the run
        for pid in pids + clf.pids():
            signal_quietly(pid, signal.SIGKILL)
    return outcome
