"""Job-worker processes for the job tests: `python -m volfefe jobs worker` as users run it.

```
start_worker(url, concurrency=1, fault="crash@1", ENV=VALUE...)
  -> JobWorker: a subprocess with test-sized job settings, stderr in a log file
  every worker still running when the test ends is killed and reaped (its children die
  with it: they hold PR_SET_PDEATHSIG); a log with "... exception was never retrieved"
  fails the test
```
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from tests.helpers import assert_no_unretrieved

# Test-sized job settings: beat every second, rescue after 3 s, retry after 1 s.
FAST_JOBS = {
    "HF_HUB_OFFLINE": "1",
    "VOLFEFE_WORKERS": "1",
    "VOLFEFE_THREADS": "1",
    "VOLFEFE_BOOT_TIMEOUT": "60",
    "VOLFEFE_SHUTDOWN_GRACE": "10",
    "VOLFEFE_JOBS_HEARTBEAT": "1",
    "VOLFEFE_JOBS_STALLED_AFTER": "3",
    "VOLFEFE_JOBS_RESCUE_CRON": "* * * * * */1",
    "VOLFEFE_JOBS_BACKOFF": "1",
    "VOLFEFE_JOBS_POLL_INTERVAL": "0.5",
    "VOLFEFE_JOBS_ENQUEUE_CRON": "off",
    "VOLFEFE_JOBS_PRUNE_CRON": "off",
}
STOP_TIMEOUT = 60.0
WORKER_ARGV = (sys.executable, "-m", "volfefe", "-v", "jobs", "worker")


class JobWorker:
    """One `volfefe jobs worker` process."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.proc.pid

    def log(self) -> str:
        """What the worker wrote to stderr so far (its -v log)."""
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        """True while the process has not exited."""
        return self.proc.poll() is None

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (a graceful stop) and wait for the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.pid} ignored SIGTERM for {timeout} s; log:\n{self.log()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.running():
            self.proc.kill()
        self.proc.wait(timeout=STOP_TIMEOUT)


StartWorker = Callable[..., JobWorker]


@pytest.fixture
def start_worker(tiny_model: Path, tmp_path: Path) -> Iterator[StartWorker]:
    """Start job workers on a database URL; all are killed and reaped when the test ends.

    `fault` sets VOLFEFE_WORKER_FAULT; with `once=True` (the default) it fires in one child
    only, across every worker of the test. Keyword arguments are extra environment variables.
    """
    started: list[JobWorker] = []

    def start(
        url: str,
        *,
        concurrency: int = 1,
        fault: str | None = None,
        once: bool = True,
        **env: str,
    ) -> JobWorker:
        full_env = {
            **os.environ,
            **FAST_JOBS,
            "DATABASE_URL": url,
            "VOLFEFE_MODEL": str(tiny_model),
            **env,
        }
        if fault:
            full_env["VOLFEFE_WORKER_FAULT"] = fault
            if once:
                full_env["VOLFEFE_WORKER_FAULT_ONCE"] = str(tmp_path / "fault-fired")
        log_path = tmp_path / f"worker-{len(started) + 1}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [*WORKER_ARGV, "--concurrency", str(concurrency)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
            )
        worker = JobWorker(proc, log_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()
    for worker in started:
        assert_no_unretrieved(worker.log())


@pytest.fixture(autouse=True)
def dump_logs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    """Print the worker logs of a failed test (pytest shows them with the failure)."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for path in sorted(tmp_path.glob("worker-*.log")):
            print(f"===== {path.name} =====\n{path.read_text(errors='replace')[-20000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so `dump_logs` knows whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
