"""The real processes the harness drives: `jobs worker` and `classify` runs.

```
Fleet.env         os.environ + the run's Settings as VOLFEFE_* + DATABASE_URL + fault switch
Fleet.workers     `python -m volfefe -v jobs worker`, logs in the run folder; topped up to N,
                  one of them in its own network namespace when the run has one (netns.py)
Fleet.classify    `python -m volfefe classify --all --json`, one at a time, summary kept
```
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from volfefe.chaos.netns import Netns
from volfefe.config import Settings

# Forwarded to every process the harness starts, so they run the configured model.
FORWARDED = (
    "model",
    "revision",
    "workers",
    "threads",
    "device",
    "quantize",
    "backend",
    "export_cache",
    "call_timeout",
    "boot_timeout",
    "shutdown_grace",
    "max_restarts",
    "restart_window",
    "batch_size",
    "batch_tokens",
    "batch_wait",
    "forward_tokens",
    "max_chars",
    "jobs_max_attempts",
)
# The harness's job timing: killed workers' jobs come back within seconds, not minutes.
JOB_TIMING = {
    "VOLFEFE_JOBS_HEARTBEAT": "1",
    "VOLFEFE_JOBS_STALLED_AFTER": "5",
    "VOLFEFE_JOBS_RESCUE_CRON": "* * * * * */1",
    "VOLFEFE_JOBS_BACKOFF": "1",
    "VOLFEFE_JOBS_POLL_INTERVAL": "0.5",
    "VOLFEFE_JOBS_ENQUEUE_CRON": "off",
    "VOLFEFE_JOBS_PRUNE_CRON": "off",
    # Over TCP only (the partition's worker): a silent link fails in 4 s, a connect in 3 s.
    "VOLFEFE_DB_KEEPALIVE": "2",
    "VOLFEFE_DB_CONNECT_TIMEOUT": "3",
}
VOLFEFE = (sys.executable, "-m", "volfefe")
ABORT_WAIT = 5.0  # seconds a process gets to dump its stacks after SIGABRT


def process_env(settings: Settings, url: str, fault: str) -> dict[str, str]:
    """The environment of a harness subprocess: the configured settings, the run's database
    and the fault switch (`poison=WORD,garbage-on-usr1`), nothing of the caller's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFEFE_")}
    env.pop("DATABASE_URL", None)
    env.update(settings.to_env(FORWARDED))
    env.update(JOB_TIMING)
    env["DATABASE_URL"] = url
    env["VOLFEFE_WORKER_FAULT"] = fault
    env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT prints every thread's stack: see `abort`
    return env


def abort(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process that overran its deadline: SIGABRT first, so faulthandler writes every
    thread's stack to its log (kept with --keep), then SIGKILL; reaped."""
    proc.send_signal(signal.SIGABRT)
    try:
        proc.wait(timeout=ABORT_WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class JobWorker:
    """One `jobs worker` process; `stopping_since` is set once it was sent SIGTERM."""

    proc: subprocess.Popen[bytes]
    log: Path
    stopping_since: float | None = None
    remote: bool = False  # runs in the run's network namespace, through its veth pair

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.proc.pid


@dataclass
class ClassifyRun:
    """One `classify --all --json` process and, once it ended, its summary."""

    proc: subprocess.Popen[bytes]
    started: float
    out: Path
    summary: dict[str, Any] = field(default_factory=dict)


class Fleet:
    """Starts, signals and reaps the harness's subprocesses, all logging into `folder`."""

    def __init__(
        self, env: dict[str, str], folder: Path, concurrency: int, netns: Netns | None = None
    ) -> None:
        self.env = env
        self.netns = netns
        self.folder = folder
        self.concurrency = concurrency
        self.workers: list[JobWorker] = []  # running, not asked to stop
        self.retiring: list[JobWorker] = []  # sent SIGTERM, not yet exited
        self.started_workers = 0
        self.self_exits: list[int] = []  # exit codes of workers that stopped on their own
        self.classify: ClassifyRun | None = None
        self.classify_done: list[ClassifyRun] = []

    def pids(self) -> set[int]:
        """Every process this fleet started and has not reaped yet."""
        pids = {w.pid for w in [*self.workers, *self.retiring]}
        return pids | ({self.classify.proc.pid} if self.classify else set())

    # --- job workers -----------------------------------------------------------------------
    def start_worker(self, *, remote: bool = False) -> JobWorker:
        """Start one more `jobs worker` (`remote`: in the network namespace, reaching the
        database through the veth pair)."""
        self.started_workers += 1
        log = self.folder / f"worker-{self.started_workers}.log"
        argv = [*VOLFEFE, "-v", "jobs", "worker", "--concurrency", str(self.concurrency)]
        env = self.env
        if remote:
            assert self.netns is not None
            argv, env = self.netns.command(argv), {**env, "DATABASE_URL": self.netns.url}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        worker = JobWorker(proc, log, remote=remote)
        self.workers.append(worker)
        return worker

    @property
    def remote(self) -> JobWorker | None:
        """The running worker in the network namespace, if any."""
        return next((w for w in self.workers if w.remote), None)

    def top_up(self, count: int) -> None:
        """Replace workers that exited by themselves, so `count` run (one of them in the
        network namespace, when the run has one)."""
        for worker in list(self.workers):
            code = worker.proc.poll()
            if code is not None:
                self.workers.remove(worker)
                self.self_exits.append(code)
        while len(self.workers) < count:
            self.start_worker(remote=self.netns is not None and self.remote is None)

    def kill_worker(self, worker: JobWorker) -> None:
        """SIGKILL and reap (its children die with it: they hold PR_SET_PDEATHSIG)."""
        self.workers.remove(worker)
        worker.proc.kill()
        worker.proc.wait()

    def term_worker(self, worker: JobWorker) -> None:
        """SIGTERM: it finishes its jobs within the grace and exits; reaped by `retired`."""
        self.workers.remove(worker)
        worker.proc.send_signal(signal.SIGTERM)
        worker.stopping_since = time.monotonic()
        self.retiring.append(worker)

    def retired(self, deadline: float) -> list[tuple[JobWorker, int | None]]:
        """Workers sent SIGTERM that exited (code) or overran `deadline` seconds (None, and
        they are killed)."""
        ended: list[tuple[JobWorker, int | None]] = []
        for worker in list(self.retiring):
            code = worker.proc.poll()
            assert worker.stopping_since is not None
            overdue = time.monotonic() - worker.stopping_since > deadline
            if code is None and not overdue:
                continue
            if code is None:
                abort(worker.proc)
            self.retiring.remove(worker)
            ended.append((worker, code))
        return ended

    # --- classify runs ---------------------------------------------------------------------
    def start_classify(self) -> ClassifyRun:
        """Start `classify --all --json` (stdout to a file: the JSON summary)."""
        out = self.folder / f"classify-{len(self.classify_done) + 1}.json"
        log = out.with_suffix(".log")
        with out.open("wb") as stdout, log.open("wb") as stderr:
            proc = subprocess.Popen(
                [*VOLFEFE, "classify", "--all", "--json"],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=self.env,
            )
        self.classify = ClassifyRun(proc, time.monotonic(), out)
        return self.classify

    def classify_ended(self, deadline: float) -> tuple[ClassifyRun, bool] | None:
        """The running classify run once it ended: (run, overran `deadline` and was killed)."""
        run = self.classify
        if run is None:
            return None
        overdue = time.monotonic() - run.started > deadline
        if run.proc.poll() is None and not overdue:
            return None
        if run.proc.poll() is None:
            abort(run.proc)
        try:
            run.summary = orjson.loads(run.out.read_bytes() or b"{}")
        except orjson.JSONDecodeError:
            run.summary = {}
        self.classify = None
        self.classify_done.append(run)
        return run, overdue

    def stop_all(self, grace: float) -> list[JobWorker]:
        """SIGTERM every worker, wait up to `grace` seconds, kill the rest (returned)."""
        for worker in list(self.workers):
            self.term_worker(worker)
        if self.classify is not None:
            self.classify.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.retiring and time.monotonic() < deadline:
            time.sleep(0.2)
            self.retired(grace)
        overran = [w for w, code in self.retired(0.0) if code is None]
        if self.classify is not None:
            self.classify_ended(0.0)
        return overran
