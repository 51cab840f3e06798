"""One harness run, phase by phase.

```
setup   temp folder, own embedded PostgreSQL, first wave of posts imported and queued,
        N job workers started (`python -m volfefe jobs worker`); with partition-worker,
        one of them in a network namespace of its own (netns.py, partition.py)
chaos   --minutes long: faults from the seeded schedule; more waves of posts; a
        `classify --all` run every few seconds; workers that exit are replaced
drain   no faults: wait (bounded) for the queue to empty, then one last `classify --all`
checks  posts (exactly once / poison), jobs (none in doing), a new post classified by the
        surviving workers within seconds, every worker stops on SIGTERM, no orphan child
```
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg

from volfefe.chaos.checks import check_jobs, check_posts
from volfefe.chaos.database import ChaosDatabase
from volfefe.chaos.fleet import Fleet, process_env
from volfefe.chaos.inject import Injector
from volfefe.chaos.netns import Netns, unavailable
from volfefe.chaos.partition import Partitions
from volfefe.chaos.posts import POISON_WORD, ChaosPost, import_wave, make_posts
from volfefe.chaos.procs import become_subreaper, descendants, reap_zombie_children, snapshot
from volfefe.chaos.report import Report
from volfefe.chaos.schedule import draw_schedule
from volfefe.config import Settings
from volfefe.errors import StoreError
from volfefe.jobs.queue import QUEUE
from volfefe.store.connect import connect

TICK = 0.2  # seconds between looks at the processes: the harness's own pacing
WAVES = 5  # the posts arrive in this many imports; the last lands at 60% of the chaos phase
IMPORT_TIMEOUT = 60.0  # seconds an import may keep failing while the database restarts
FAULT_GAP = 1.0  # seconds at least between two faults
TARGET_WAIT = 5.0  # seconds a fault may wait for a target (each tick) before it has none
SETUP_SLACK = 30.0  # seconds past two boot timeouts for the namespaced worker to start
ORPHAN_WAIT = 15.0  # seconds children of stopped processes get to die (PDEATHSIG is instant)


@dataclass(frozen=True)
class ChaosOptions:
    """What the command line chose for one run."""

    seed: int
    posts: int
    minutes: float
    poison: int
    kinds: tuple[str, ...]
    interval: float = 5.0  # seconds between faults, on average
    pause_seconds: float = 10.0  # a database pause lasts 1-2 times this
    child_delay: float = 0.0  # seconds each child reply is delayed (keeps calls in flight)
    job_workers: int = 2
    classify_every: float = 10.0  # seconds between the starts of classify runs
    drain_timeout: float = 180.0
    fresh_slack: float = 30.0  # a fresh post may take the call timeout plus this
    run_timeout: float = 300.0  # seconds one classify run may take
    partition_seconds: float = 30.0  # a partition-worker fault cuts the worker off this long
    keep: bool = False  # keep the run folder (logs of every process, the database) after


class Harness:
    """Runs the phases; `run()` returns the report (never raises for a violation)."""

    def __init__(self, settings: Settings, options: ChaosOptions) -> None:
        self.options = options
        self.folder = Path(tempfile.mkdtemp(prefix="volfefe-chaos-"))
        fault = f"poison={POISON_WORD},garbage-on-usr1"
        if options.child_delay:
            fault += f",delay={options.child_delay}"
        self.fault = fault
        self.settings = settings.replace(
            database_url=None,
            data_dir=self.folder,
            worker_env={**settings.worker_env, "VOLFEFE_WORKER_FAULT": fault},
        )
        self.report = Report(options.seed, options.posts, options.poison, options.minutes)
        self.ids: dict[str, int] = {}
        self.poison_ids: list[int] = []
        self.run_failures: dict[int, list[str]] = {}
        self.run_codes: Counter[int] = Counter()
        self._mark = time.monotonic()
        self.partitions: Partitions | None = None

    def run(self) -> Report:
        """Setup, chaos, drain, checks; everything started is stopped and removed after. An
        error that ends the run early is a violation in the report, like any other."""
        become_subreaper()
        db = ChaosDatabase(self.folder)
        env = process_env(self.settings, db.url, self.fault)
        netns = self._netns(db.url)
        fleet = Fleet(env, self.folder, self.settings.job_slots, netns)
        if netns is not None:
            self.partitions = Partitions(
                netns,
                fleet,
                db.url,
                Settings.from_env(env),  # the workers' own (the harness's job timing)
                self.report,
                self.options.partition_seconds,
            )
        try:
            self._run(db, fleet)
        except Exception as exc:  # reported: the run still ends with its report
            self.report.violations.append(f"the harness stopped early: {type(exc).__name__}: {exc}")
        finally:
            if self.partitions is not None:
                self.partitions.heal_now()
            fleet.stop_all(0.0)
            reap_zombie_children(fleet.pids())
            if netns is not None:
                netns.close()
            db.stop()
            if self.options.keep:
                self.report.notes.append(f"logs and database kept in {self.folder}")
            else:
                shutil.rmtree(self.folder, ignore_errors=True)
        return self.report

    def _netns(self, db_url: str) -> Netns | None:
        """The namespace of the partition's worker, when the run has that fault and this
        machine can make one (else a note says why the fault finds no target)."""
        if "partition-worker" not in self.options.kinds:
            return None
        reason = unavailable()
        if reason is None:
            netns = Netns(db_url)
            try:
                netns.open()
            except (subprocess.SubprocessError, OSError) as exc:
                reason = f"`ip` could not make the namespace: {exc}"
            else:
                return netns
        self.report.notes.append(f"partition-worker skipped: {reason}")
        return None

    def _run(self, db: ChaosDatabase, fleet: Fleet) -> None:
        opts = self.options
        rng = random.Random(opts.seed)  # noqa: S311 (a reproducible schedule, not a secret)
        posts = make_posts(rng, opts.posts, opts.poison)
        waves = _waves(posts)
        duration = opts.minutes * 60
        schedule = draw_schedule(opts.seed, duration, opts.kinds, interval=opts.interval)
        self.report.faults_scheduled.update(e.kind for e in schedule)
        injector = Injector(
            self.settings,
            fleet,
            db,
            self.report,
            job_workers=opts.job_workers,
            pause_seconds=opts.pause_seconds,
            rng=random.Random(opts.seed + 1),  # noqa: S311
            partitions=self.partitions,
        )
        self._import(db, 0, waves[0])
        fleet.top_up(opts.job_workers)
        if self.partitions is not None:
            self.partitions.wait_attached(2 * self.settings.boot_timeout + SETUP_SLACK, TICK)
        start = time.monotonic()
        self._phase("setup")
        next_wave, last_run, next_fault, first_try = 1, 0.0, 0.0, 0.0
        while (elapsed := time.monotonic() - start) < duration or schedule:
            if next_wave < len(waves) and elapsed >= next_wave / WAVES * 0.6 * duration:
                self._import(db, next_wave, waves[next_wave])
                next_wave += 1
            # A late event (after a pause or a close that took long) waits FAULT_GAP after
            # the previous one, so faults never arrive all at once.
            if schedule and elapsed >= schedule[0].at and time.monotonic() >= next_fault:
                first_try = first_try or time.monotonic()
                # No target now (a child still booting after the last fault): it is tried each
                # tick for TARGET_WAIT seconds before it counts as without one.
                waited = time.monotonic() - first_try
                if injector.inject(schedule[0], last_try=waited >= TARGET_WAIT):
                    schedule.pop(0)
                    first_try = 0.0
                    next_fault = time.monotonic() + FAULT_GAP
            self._tick(fleet)
            if fleet.classify is None and time.monotonic() - last_run >= opts.classify_every:
                fleet.start_classify()
                last_run = time.monotonic()
            time.sleep(TICK)
        for wave in range(next_wave, len(waves)):
            self._import(db, wave, waves[wave])
        injector.finish()
        if self.partitions is not None:
            self.partitions.finish(TICK, lambda: self._tick(fleet))
        self._phase("chaos")
        self._drain(db, fleet)
        self._phase("drain")
        self._check(db, fleet, injector.signalled)
        self._phase("checks")

    def _phase(self, name: str) -> None:
        now = time.monotonic()
        self.report.phases[name] = round(now - self._mark, 1)
        self._mark = now

    def _import(self, db: ChaosDatabase, wave: int, posts: list[ChaosPost]) -> None:
        deadline = time.monotonic() + IMPORT_TIMEOUT
        while True:  # the database may be coming back from a restart
            try:
                ids = import_wave(db.url, self.folder, wave, posts)
                break
            except (StoreError, psycopg.OperationalError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
        self.ids.update(ids)
        self.poison_ids += [ids[p.external_id] for p in posts if p.poison]

    def _tick(self, fleet: Fleet) -> None:
        """Replace exited workers, collect ended classify runs and SIGTERMed workers; watch
        a partition under way."""
        fleet.top_up(self.options.job_workers)
        if self.partitions is not None:
            self.partitions.tick()
        ended = fleet.classify_ended(self.options.run_timeout)
        if ended is not None:
            run, overdue = ended
            if overdue:
                self.report.violations.append(
                    f"a classify run took over {self.options.run_timeout:g} s (aborted; its "
                    f"stacks are in {run.out.with_suffix('.log').name}, see --keep)"
                )
            self.run_codes[run.proc.returncode] += 1
            for failure in run.summary.get("failures", []):
                self.run_failures.setdefault(failure["content_id"], []).append(failure["reason"])
        grace = self.settings.shutdown_grace + self.settings.call_timeout + 30
        for worker, code in fleet.retired(grace):
            if code is None:
                self.report.violations.append(
                    f"job worker {worker.pid} still ran {grace:g} s after SIGTERM (aborted; "
                    f"its stacks are in {worker.log.name}, see --keep)"
                )
            elif code != 0:
                self.report.notes.append(f"job worker {worker.pid} exited {code} after SIGTERM")

    def _drain(self, db: ChaosDatabase, fleet: Fleet) -> None:
        """No faults: wait for the queue to empty (bounded), then one last classify run."""
        deadline = time.monotonic() + self.options.drain_timeout
        while time.monotonic() < deadline:
            self._tick(fleet)
            if fleet.classify is None and _queue_empty(db.url):
                break
            time.sleep(TICK)
        else:
            self.report.notes.append(
                f"the queue was not empty after {self.options.drain_timeout:g} s of drain"
            )
        while fleet.classify is not None:
            self._tick(fleet)
            time.sleep(TICK)
        innocent = set(self.ids.values()).difference(self.poison_ids)
        if not _all_classified(db.url, innocent):  # what the workers left, the operator's tool does
            fleet.start_classify()
            while fleet.classify is not None:
                self._tick(fleet)
                time.sleep(TICK)

    def _check(self, db: ChaosDatabase, fleet: Fleet, signalled: set[int]) -> None:
        report = self.report
        innocent = sorted(set(self.ids.values()).difference(self.poison_ids))
        with connect(db.url) as conn:
            outcomes, violations = check_posts(
                conn, innocent, self.poison_ids, self.run_failures, signalled
            )
            report.outcomes.update(outcomes)
            report.violations += violations
            outcomes, violations = check_jobs(conn, self.poison_ids)
            report.outcomes.update(outcomes)
            report.violations += violations
        report.outcomes["fresh post classified by the workers (s)"] = self._fresh_post(db, fleet)
        report.outcomes["classify runs (by exit status)"] = {
            str(code): n for code, n in sorted(self.run_codes.items())
        }
        report.outcomes["job workers started"] = fleet.started_workers
        report.outcomes["job workers exited on their own"] = len(fleet.self_exits)
        if fleet.self_exits:
            report.notes.append(
                f"job workers exited on their own with status {sorted(fleet.self_exits)} "
                f"(the harness started new ones, as a service manager would)"
            )
        grace = self.settings.shutdown_grace + self.settings.call_timeout + 30
        for worker in fleet.stop_all(grace):
            report.violations.append(f"job worker {worker.pid} ignored SIGTERM for {grace:g} s")
        orphans = _wait_for_no_children(ORPHAN_WAIT)
        if orphans:
            report.violations.append(
                f"volfefe children left alive after every process stopped: pids {orphans}"
            )

    def _fresh_post(self, db: ChaosDatabase, fleet: Fleet) -> float | None:
        """Seconds until the surviving workers classified a new post, or None (violation)."""
        if not fleet.workers:
            self.report.violations.append("no job worker survived to classify a new post")
            return None
        fresh = ChaosPost(f"fresh-{self.options.seed}", "Stocks rally after the chaos", False)
        # The last fault may have frozen a surviving worker's idle child just now: the first
        # call to it is answered only at the call timeout (then retried on a new child).
        timeout = self.settings.call_timeout + self.options.fresh_slack
        started = time.monotonic()
        content_id = import_wave(db.url, self.folder, -1, [fresh])[fresh.external_id]
        while (waited := time.monotonic() - started) < timeout:
            with connect(db.url) as conn:
                done = conn.execute(
                    "SELECT 1 FROM classifications WHERE content_id = %(id)s", {"id": content_id}
                ).fetchone()
            if done:
                return round(waited, 2)
            time.sleep(TICK)
        alive = sum(w.proc.poll() is None for w in fleet.workers)
        with connect(db.url) as conn:
            attempts = conn.execute(
                "SELECT outcome, error_type FROM volfefe_job_attempts"
                " WHERE content_id = %(id)s ORDER BY id",
                {"id": content_id},
            ).fetchall()
        tried = "; ".join(f"{a['outcome']} {a['error_type'] or ''}".strip() for a in attempts)
        self.report.violations.append(
            f"the surviving job workers ({alive} running) did not classify a new post within "
            f"{timeout:g} s (its job's attempts: {tried or 'none'})"
        )
        return None


def _waves(posts: list[ChaosPost]) -> list[list[ChaosPost]]:
    first = max(1, len(posts) * 2 // 5)  # 40% at the start, the rest in WAVES - 1 imports
    rest = posts[first:]
    size = -(-len(rest) // (WAVES - 1)) if rest else 1
    return [posts[:first]] + [rest[i : i + size] for i in range(0, len(rest), size)]


def _all_classified(url: str, ids: set[int]) -> bool:
    with connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM classifications WHERE content_id = ANY(%(ids)s)",
            {"ids": sorted(ids)},
        ).fetchone()
    return row is not None and row["n"] == len(ids)


def _queue_empty(url: str) -> bool:
    try:
        with connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) AS n FROM procrastinate_jobs"
                " WHERE queue_name = %(queue)s AND status IN ('todo', 'doing')",
                {"queue": QUEUE},
            ).fetchone()
    except (StoreError, psycopg.OperationalError):
        return False
    return row is not None and row["n"] == 0


def _wait_for_no_children(timeout: float) -> list[int]:
    """Wait for every volfefe child below us to die; the pids still alive after `timeout`
    (killed then, so the run leaves nothing behind)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p.pid for p in descendants(snapshot(), os.getpid()) if p.is_volfefe_child]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(TICK)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left
