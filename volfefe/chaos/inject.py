"""Carrying out one scheduled fault against whatever is alive at that moment.

Each kind returns True when it found a target (False: nothing to hit, e.g. no child was
running) and adds a violation to the report when the system did not keep its word.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from typing import TypeVar

from volfefe.chaos.close_load import MARGIN, CloseOutcome, close_under_load
from volfefe.chaos.database import ChaosDatabase
from volfefe.chaos.fleet import Fleet
from volfefe.chaos.partition import Partitions
from volfefe.chaos.procs import Proc, catches, descendants, signal_quietly, snapshot
from volfefe.chaos.report import Report
from volfefe.chaos.schedule import FaultEvent
from volfefe.config import Settings
from volfefe.errors import DatabaseUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")

MIN_CHILD_AGE = 1.0  # seconds: a child younger than this may not have its signal handler yet
CHILD_SIGNALS = {
    "kill-child": signal.SIGKILL,
    "hang-child": signal.SIGSTOP,
    "garbage-child": signal.SIGUSR1,  # the child fault `garbage-on-usr1` garbles the next reply
}


class Injector:
    """Injects faults into one harness run's processes and database."""

    def __init__(
        self,
        settings: Settings,
        fleet: Fleet,
        db: ChaosDatabase,
        report: Report,
        *,
        job_workers: int,
        pause_seconds: float,
        rng: random.Random,
        partitions: Partitions | None = None,
    ) -> None:
        self.settings = settings
        self.fleet = fleet
        self.db = db
        self.report = report
        self.job_workers = job_workers
        self.pause_seconds = pause_seconds
        self.rng = rng
        self.partitions = partitions  # None: this machine cannot make namespaces
        self._closes: list[tuple[threading.Thread, list[CloseOutcome]]] = []
        self.signalled: set[int] = set()  # children this run killed, froze or garbled

    def inject(self, event: FaultEvent, *, last_try: bool = True) -> bool:
        """Carry out `event` and count it as injected, or as without a target when this is
        its last try; whether it is done with (False: no target now, try again later)."""
        if event.kind in CHILD_SIGNALS:
            hit = self._signal_child(event, CHILD_SIGNALS[event.kind])
        else:
            hit = getattr(self, "_" + event.kind.replace("-", "_"))(event)
        if not hit and not last_try:
            return False
        counter = self.report.faults_injected if hit else self.report.faults_no_target
        counter[event.kind] += 1
        logger.info("fault %s at %.1f s: %s", event.kind, event.at, "done" if hit else "no target")
        return True

    def children(self) -> list[Proc]:
        """Running (not frozen) volfefe children anywhere below this process, by pid."""
        below = descendants(snapshot(), os.getpid())
        return sorted(
            (p for p in below if p.is_volfefe_child and p.state != "T" and p.age_s > MIN_CHILD_AGE),
            key=lambda p: p.pid,
        )

    def _signal_child(self, event: FaultEvent, sig: signal.Signals) -> bool:
        targets = self.children()
        if not targets:
            return False
        if sig == signal.SIGUSR1:  # only children that installed the fault's handler
            targets = [p for p in targets if catches(p.pid, sig)]
            if not targets:
                return False
        target = _pick(targets, event)
        logger.info("sending %s to child %d (parent %d)", sig.name, target.pid, target.ppid)
        self.signalled.add(target.pid)
        return signal_quietly(target.pid, sig)

    def _kill_worker(self, event: FaultEvent) -> bool:
        if not self.fleet.workers:
            return False
        self.fleet.kill_worker(_pick(self.fleet.workers, event))
        self.fleet.top_up(self.job_workers)
        return True

    def _term_worker(self, event: FaultEvent) -> bool:
        if not self.fleet.workers:
            return False
        self.fleet.term_worker(_pick(self.fleet.workers, event))
        self.fleet.top_up(self.job_workers)
        return True

    def _restart_db(self, event: FaultEvent) -> bool:
        try:
            failure = self.db.restart()
        except DatabaseUnavailable as exc:
            self.report.violations.append(f"the harness could not restart the database: {exc}")
            return True  # tried: the violation says how it went
        if failure is not None:
            self.report.notes.append(f"{failure}; the harness started the database again")
        return True

    def _pause_db(self, event: FaultEvent) -> bool:
        return self.db.pause(self.pause_seconds * (1 + event.pick)) > 0

    def _partition_worker(self, event: FaultEvent) -> bool:
        return self.partitions is not None and self.partitions.start()

    def _close_under_load(self, event: FaultEvent) -> bool:
        # In a thread of its own: on a supervisor that leaves callers blocked it takes
        # grace + call timeout + margin, and the schedule must go on meanwhile.
        load_for = self.rng.uniform(0.2, 1.0)
        outcomes: list[CloseOutcome] = []
        thread = threading.Thread(
            target=lambda: outcomes.append(close_under_load(self.settings, load_for)),
            daemon=True,
        )
        thread.start()
        self._closes.append((thread, outcomes))
        return True

    def finish(self) -> None:
        """Wait for the close-under-load faults still running (each one is bounded) and
        judge each outcome."""
        s = self.settings
        limit = 2 * s.boot_timeout + s.shutdown_grace + s.call_timeout + MARGIN
        deadline = time.monotonic() + limit
        for thread, outcomes in self._closes:
            thread.join(max(0.0, deadline - time.monotonic()))
            if outcomes:
                self._judge_close(outcomes[0])
            else:
                self.report.violations.append(
                    f"close() under load: the fault did not end within {limit:g} s"
                )
        self._closes.clear()

    def _judge_close(self, outcome: CloseOutcome) -> None:
        frozen = " with a frozen child" if outcome.froze_child else ""
        if outcome.blocked:
            self.report.violations.append(
                f"close() under load{frozen}: {outcome.blocked} threads (callers or close "
                f"itself) still blocked past the deadline (grace + call timeout + 10 s)"
            )
        else:
            slowest = self.report.outcomes.get("close() under load: slowest end (s)", 0.0)
            self.report.outcomes["close() under load: slowest end (s)"] = max(
                slowest, outcome.seconds
            )
        for error in outcome.errors:
            self.report.violations.append(f"close() under load{frozen}: {error}")


def _pick(items: list[T], event: FaultEvent) -> T:
    return items[min(len(items) - 1, int(event.pick * len(items)))]
