"""`volfefe serve` as users run it: a real process on a free port, real PostgreSQL, the tiny
model, httpx as the client.

```
serve(database_url, "--with-worker", token=..., ENV=VALUE...)
  -> Served: the process, its base URL and its log; ready once /readyz answers 200
  every server still running when the test ends is stopped (SIGTERM, then SIGKILL); a log
  with "... exception was never retrieved" fails the module's last test
web_database_url (module): a fresh migrated database per module and backend
```
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.fixtures_db import backends_in_use, fresh_database, stop_embedded
from tests.helpers import assert_no_unretrieved, eventually
from volfefe.store.connect import connect

TOKEN = "test-token-0123456789abcdef"
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0
SERVE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "VOLFEFE_BACKEND": "onnx",
    "VOLFEFE_WORKERS": "1",
    "VOLFEFE_THREADS": "1",
    "VOLFEFE_BOOT_TIMEOUT": "60",
    "VOLFEFE_SHUTDOWN_GRACE": "5",
    "VOLFEFE_JOBS_HEARTBEAT": "1",
    "VOLFEFE_JOBS_STALLED_AFTER": "3",
    "VOLFEFE_JOBS_BACKOFF": "1",
    "VOLFEFE_JOBS_POLL_INTERVAL": "0.5",
    "VOLFEFE_JOBS_ENQUEUE_CRON": "off",
    "VOLFEFE_JOBS_PRUNE_CRON": "off",
}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """One `python -m volfefe serve` process."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def log(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")

    def client(self, token: str | None = None) -> httpx.Client:
        """An httpx client on this server, with the Bearer token when given."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30.0)

    def wait_ready(self, path: str = "/readyz", status: int = 200) -> None:
        """Wait until `path` answers `status` (or fail with the log)."""

        def answers() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                return httpx.get(self.base_url + path, timeout=5.0).status_code == status
            except httpx.TransportError:
                return False

        try:
            eventually(answers, timeout=READY_TIMEOUT, interval=0.2)
        except AssertionError as err:
            raise AssertionError(f"{err}\n--- serve log ---\n{self.log()}") from None

    def stop(self) -> int:
        """SIGTERM and wait for the exit status (SIGKILL if it hangs, which fails the test)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
            raise AssertionError(f"serve ignored SIGTERM:\n{self.log()}") from None


Serve = Callable[..., Served]


@pytest.fixture(scope="module")
def serve(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """Start servers; `database_url=None` means the embedded database (in a private folder)."""
    started: list[Served] = []
    embedded: list[Path] = []
    folder = tmp_path_factory.mktemp("serve")

    def start(
        database_url: str | None,
        *args: str,
        token: str | None = TOKEN,
        ready: bool = True,
        **env: str,
    ) -> Served:
        port = free_port()
        full_env = {**os.environ, **SERVE_ENV, "VOLFEFE_MODEL": str(tiny_model), **env}
        full_env.pop("DATABASE_URL", None)
        if database_url is not None:
            full_env["DATABASE_URL"] = database_url
        else:
            # Not under pytest's basetemp: a concurrent pytest run chmods it to 0700, which
            # locks out postgres (it runs as another user when we are root).
            data_dir = Path(tempfile.mkdtemp(prefix="volfefe-test-serve-"))
            data_dir.chmod(0o755)
            embedded.append(data_dir)
            full_env.setdefault("VOLFEFE_DATA_DIR", str(data_dir))
        if token is not None:
            full_env["VOLFEFE_API_TOKEN"] = token
        log_path = folder / f"serve-{len(started) + 1}.log"
        argv = [sys.executable, "-m", "volfefe", "serve", "--port", str(port), *args]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=full_env
            )
        served = Served(proc, port, log_path)
        started.append(served)
        if ready:
            served.wait_ready()
        return served

    yield start
    for served in started:
        if served.proc.poll() is None:
            served.proc.send_signal(signal.SIGTERM)
            try:
                served.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                served.proc.kill()
                served.proc.wait(timeout=STOP_TIMEOUT)
    for data_dir in embedded:  # volfefe leaves its embedded server running, by design
        stop_embedded(data_dir / "pgdata")
        shutil.rmtree(data_dir, ignore_errors=True)
    for served in started:
        assert_no_unretrieved(served.log())


@pytest.fixture(scope="module", params=backends_in_use())
def web_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh migrated database shared by the tests of one module, on the backend in use."""
    admin_url, template = request.getfixturevalue(f"{request.param}_template")
    with fresh_database(admin_url, template) as url:
        yield url


@pytest.fixture
def api(server: Served) -> Iterator[httpx.Client]:
    """A client of the module's `server` that sends the token."""
    with server.client(TOKEN) as client:
        yield client


@pytest.fixture
def conn(web_database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the module's database."""
    with connect(web_database_url) as c:
        yield c
