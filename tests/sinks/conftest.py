"""Fixtures of the sink tests: real receivers, real `python -m volfefe deliver` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import assert_no_unretrieved, eventually
from tests.jobs.helpers import insert_posts
from tests.sinks.receiver import Receiver
from volfefe.result import Classification
from volfefe.store.posts import save_classification

# Short waits, so a test sees retries and recoveries within seconds.
DELIVER_ENV = {
    "VOLFEFE_SINK_BACKOFF": "0.05",
    "VOLFEFE_SINK_BACKOFF_MAX": "0.5",
    "VOLFEFE_SINK_POLL_INTERVAL": "1",
    "VOLFEFE_SINK_UNHEALTHY_AFTER": "3",
    "VOLFEFE_SINK_TIMEOUT": "5",
}


class DeliverProcess:
    """`python -m volfefe deliver` on a test database, its output in a log file."""

    def __init__(self, url: str, log: Path, **env: str) -> None:
        self.log_path = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "volfefe", "deliver"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **DELIVER_ENV, **env, "DATABASE_URL": url},
            )

    def log(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM; it must end with status 0 and no unretrieved exception."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise AssertionError(f"deliver ignored SIGTERM:\n{self.log()}") from None
        assert code == 0, self.log()
        assert_no_unretrieved(self.log())

    def kill(self) -> None:
        """SIGKILL: a crash, with no clean-up at all."""
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """Receivers closed when the test ends."""
    made: list[Receiver] = []

    def make(status: int = 200) -> Receiver:
        made.append(Receiver(status))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def deliverers(database_url: str, tmp_path: Path) -> Iterator[Callable[..., DeliverProcess]]:
    """Delivery processes on this test's database, stopped when the test ends."""
    made: list[DeliverProcess] = []

    def start(**env: str) -> DeliverProcess:
        made.append(DeliverProcess(database_url, tmp_path / f"deliver-{len(made)}.log", **env))
        return made[-1]

    yield start
    for process in made:
        if process.proc.poll() is None:
            process.stop()


def wait_delivering(conn: psycopg.Connection[Any], processes: int = 1) -> None:
    """Until `processes` delivery processes listen (they look at their sinks right after)."""

    def ready() -> bool:
        row = conn.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = "
            "'volfefe deliver' AND datname = current_database() AND state = 'idle' "
            "AND query = 'LISTEN volfefe_sinks'"
        ).fetchone()
        return row is not None and row["n"] >= processes

    eventually(ready, timeout=60)


def store(
    conn: psycopg.Connection[Any],
    n: int,
    sentiment: str = "negative",
    confidence: float = 0.75,
) -> list[int]:
    """Store `n` posts with a classification each; the classification ids in order."""
    ids = insert_posts(conn, [f"post {i}" for i in range(n)])
    result = Classification(sentiment, confidence, "m@1", {sentiment: confidence})
    return [save_classification(conn, i, result).id for i in ids]


def expected_ids(conn: psycopg.Connection[Any], ids: list[int]) -> list[str]:
    """The webhook-ids of these classifications' current versions, in id order."""
    rows = conn.execute(
        "SELECT id, version FROM classifications WHERE id = ANY(%(ids)s) ORDER BY id",
        {"ids": ids},
    ).fetchall()
    return [f"msg_{row['id']}_{row['version']}" for row in rows]
