"""The `partition-worker` fault: the job worker in the run's network namespace is cut off
from PostgreSQL by dropped packets, then the network comes back.

```
cut     host end of the veth pair down (netns.py): the worker's connections go silent; the
        jobs in `doing` and the workers' heartbeats are noted
cut off the other workers must rescue its jobs (VOLFEFE_JOBS_STALLED_AFTER, rescue cron),
        and it must notice: its procrastinate worker stops (the heartbeat's statement fails
        by the TCP user timeout, the listener's by keepalives) within notice_bound()
heal    after --partition-seconds; it must start its procrastinate worker again (or exit,
        and the harness starts another) within rejoin_bound()
```
What the worker writes to its log tells when it noticed and when it rejoined; the harness
reads the log as it grows, so the times are the harness's own (within one TICK).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from volfefe.chaos.fleet import Fleet, JobWorker
from volfefe.chaos.netns import Netns
from volfefe.chaos.report import Report
from volfefe.config import Settings
from volfefe.errors import StoreError
from volfefe.jobs.queue import QUEUE
from volfefe.store.connect import connect

logger = logging.getLogger(__name__)

# Lines of a job worker's log that say it lost the database: procrastinate's (a side task,
# the heartbeat or the listener, failed), the connector's (any statement of procrastinate's,
# a fetch, a finish or a heartbeat, failed: volfefe.jobs.connections) and the runner's
# (procrastinate's worker ended).
NOTICED = (
    b"Side task ",
    b"the job queue lost the database",
    b"job worker lost the database",
    b"job worker stopped by itself",
)
REJOINED = b"Starting worker on"  # procrastinate registered a worker again: it has the database
SLACK = 5.0  # seconds added to each bound: the harness's pacing, a loaded machine
BEAT_MARGIN = 0.5  # seconds: a heartbeat stamped this long after the cut crossed no cut link

HELD = """
SELECT j.id, j.worker_id FROM procrastinate_jobs AS j
WHERE j.queue_name = %(queue)s AND j.status = 'doing' AND j.worker_id IS NOT NULL
"""
WORKERS = "SELECT id, extract(epoch FROM last_heartbeat) AS beat FROM procrastinate_workers"
STILL_HELD = """
SELECT id FROM procrastinate_jobs
WHERE id = ANY(%(ids)s) AND status = 'doing' AND worker_id = ANY(%(workers)s)
"""


def keepalive_idle(settings: Settings) -> int:
    """Seconds of silence before the first keepalive probe (as `with_limits` rounds it)."""
    return max(1, round(settings.db_keepalive))


def notice_bound(settings: Settings) -> float:
    """Seconds after a silent cut by which a job worker has noticed: its next heartbeat
    (`jobs_heartbeat`) fails once unacknowledged for the TCP user timeout (2 x keepalive),
    and its idle listener's keepalive probes give up within the same 2 x keepalive."""
    return settings.jobs_heartbeat + 2 * keepalive_idle(settings)


def rejoin_bound(settings: Settings) -> float:
    """Seconds after the network returns by which a job worker that noticed has its
    procrastinate worker running again: an attempt begun while cut off waits at most one pool
    timeout (30 s) for a connection, each try bounded by the connect timeout, then the runner
    pauses at most 2 s and starts again."""
    connect_timeout = max(2, round(settings.db_connect_timeout))
    return POOL_TIMEOUT + connect_timeout + 2.0


POOL_TIMEOUT = 30.0  # seconds psycopg_pool waits for a connection (procrastinate's pool's)


@dataclass
class Cut:
    """One partition under way: when, of whom, and what was seen since."""

    worker: JobWorker
    started: float  # monotonic
    wall: float  # time.time() at the cut, to compare with the heartbeats
    heal_at: float  # monotonic
    offset: int  # bytes of the worker's log written before the cut
    held: dict[int, int] = field(default_factory=dict)  # job id -> worker id, `doing`
    beats: dict[int, float] = field(default_factory=dict)  # worker id -> last heartbeat
    noticed: float | None = None  # seconds after the cut
    healed: float | None = None  # monotonic
    rejoined: float | None = None  # seconds after the heal


class Partitions:
    """Cuts the namespaced worker off, heals it, and judges what the system did meanwhile."""

    def __init__(
        self,
        netns: Netns,
        fleet: Fleet,
        db_url: str,
        settings: Settings,
        report: Report,
        seconds: float,
    ) -> None:
        self.netns = netns
        self.fleet = fleet
        self.db_url = db_url
        self.settings = settings
        self.report = report
        self.seconds = seconds
        self.cut: Cut | None = None

    def attached(self) -> bool:
        """Whether the namespaced worker runs and has started its procrastinate worker (so
        it has the database, and a heartbeat others can see stop)."""
        worker = self.fleet.remote
        return worker is not None and REJOINED in _read_from(worker.log, 0)

    def wait_attached(self, timeout: float, pace: float) -> None:
        """Wait until `attached()` (at most `timeout` seconds; a note says when it was not):
        a cut before it would find a worker still booting, holding nothing."""
        deadline = time.monotonic() + timeout
        while not self.attached():
            if time.monotonic() > deadline:
                self.report.notes.append(
                    f"partition: the namespaced worker had not started within {timeout:g} s"
                )
                return
            time.sleep(pace)

    def start(self) -> bool:
        """Cut the namespaced worker off (False: none runs or it has not started yet, or a
        partition is under way)."""
        worker = self.fleet.remote
        if worker is None or self.cut is not None or not self.attached():
            return False
        held, beats = self._snapshot()
        now = time.monotonic()
        self.netns.cut()
        self.cut = Cut(
            worker,
            now,
            time.time(),
            now + self.seconds,
            _size(worker.log),
            held,
            beats,
        )
        logger.info("partition: worker %d cut off for %g s", worker.pid, self.seconds)
        return True

    def tick(self) -> None:
        """Read the cut-off worker's log; heal when due; judge once it rejoined (or gave up)."""
        cut = self.cut
        if cut is None:
            return
        now = time.monotonic()
        text = _read_from(cut.worker.log, cut.offset)
        if cut.noticed is None and any(marker in text for marker in NOTICED):
            cut.noticed = now - cut.started
            logger.info("partition: the cut-off worker noticed after %.1f s", cut.noticed)
        if cut.healed is None:
            if now >= cut.heal_at:
                self._judge_rescue(cut)
                self.netns.heal()
                cut.healed = now
                cut.offset = _size(cut.worker.log)
                logger.info("partition: network back")
            return
        if REJOINED in text:
            cut.rejoined = now - cut.healed
            self._judge(cut)
        elif cut.worker.proc.poll() is not None:
            self.report.notes.append(
                f"partition: the cut-off worker exited {cut.worker.proc.returncode} "
                f"{now - cut.healed:.1f} s after the network came back"
            )
            self._judge(cut)
        elif now - cut.healed > rejoin_bound(self.settings) + SLACK:
            self._judge(cut)

    def busy(self) -> bool:
        """True while a partition is under way or not yet judged."""
        return self.cut is not None

    def finish(self, pace: float, tick: Callable[[], None]) -> None:
        """Call `tick` (the harness's, which calls ours) every `pace` seconds until the
        partition under way is healed and judged (bounded by its length and the rejoin
        bound)."""
        while self.cut is not None:
            tick()
            time.sleep(pace)

    def heal_now(self) -> None:
        """Bring the network back at once (the run is ending)."""
        if self.cut is not None and self.cut.healed is None:
            self.netns.heal()
        self.cut = None

    def _snapshot(self) -> tuple[dict[int, int], dict[int, float]]:
        try:
            with connect(self.db_url) as conn:
                held = {r["id"]: r["worker_id"] for r in conn.execute(HELD, {"queue": QUEUE})}
                beats = {r["id"]: float(r["beat"]) for r in conn.execute(WORKERS)}
        except (StoreError, psycopg.Error) as exc:  # the database may be down by another fault
            logger.warning("partition: no snapshot of the jobs at the cut: %s", exc)
            return {}, {}
        return held, beats

    def _judge_rescue(self, cut: Cut) -> None:
        """Just before the heal: the jobs the cut-off worker held must have been rescued."""
        _, beats = self._snapshot()
        # The workers that stopped beating at the cut: the cut-off one (and any other a
        # fault killed meanwhile, whose jobs are rescued the same way).
        silent = [w for w in cut.beats if beats.get(w, 0.0) <= cut.wall + BEAT_MARGIN]
        held = sorted(job for job, worker in cut.held.items() if worker in silent)
        outcomes = self.report.outcomes
        key = "partition: jobs held by the cut-off worker"
        outcomes[key] = outcomes.get(key, 0) + len(held)
        if not held:
            return
        stalled = self.settings.jobs_stalled_after
        if self.seconds < stalled + SLACK:
            self.report.notes.append(
                f"partition: {self.seconds:g} s is too short to see {len(held)} jobs rescued "
                f"(stalled after {stalled:g} s)"
            )
            return
        try:
            with connect(self.db_url) as conn:
                rows = conn.execute(STILL_HELD, {"ids": held, "workers": silent}).fetchall()
        except (StoreError, psycopg.Error) as exc:
            self.report.notes.append(f"partition: could not check the rescue: {exc}")
            return
        key = "partition: of those, rescued while it was cut off"
        outcomes[key] = outcomes.get(key, 0) + len(held) - len(rows)
        if rows:
            self.report.violations.append(
                f"partition: {len(rows)} jobs of the cut-off worker still in doing under it "
                f"after {self.seconds:g} s cut off (stalled after {stalled:g} s): "
                f"{[r['id'] for r in rows]}"
            )

    def _judge(self, cut: Cut) -> None:
        self.cut = None
        outcomes, violations = self.report.outcomes, self.report.violations
        notice, rejoin = notice_bound(self.settings), rejoin_bound(self.settings)
        if cut.noticed is None or cut.noticed > notice + SLACK:
            seen = "never" if cut.noticed is None else f"after {cut.noticed:.1f} s"
            if cut.noticed is not None or self.seconds >= notice + SLACK:
                violations.append(
                    f"partition: the cut-off worker noticed {seen} (bound: heartbeat + "
                    f"2 x keepalive = {notice:g} s, + {SLACK:g} s slack)"
                )
        if cut.noticed is not None:
            key = "partition: cut-off worker noticed after (s)"
            outcomes[key] = max(outcomes.get(key, 0.0), round(cut.noticed, 1))
        if cut.rejoined is not None:
            key = "partition: rejoined after the network came back (s)"
            outcomes[key] = max(outcomes.get(key, 0.0), round(cut.rejoined, 1))
        elif cut.noticed is not None and cut.worker.proc.poll() is None:
            violations.append(
                f"partition: the cut-off worker neither rejoined nor exited within "
                f"{rejoin + SLACK:g} s of the network coming back"
            )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            return log.read()
    except OSError:
        return b""
