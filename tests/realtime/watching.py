"""Helpers for the watch tests: a `python -m volfefe watch` process and stored results."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from typing import Any

import psycopg

from tests.helpers import eventually
from tests.jobs.helpers import insert_posts
from volfefe.result import Classification
from volfefe.store.posts import save_classification


def store_results(conn: psycopg.Connection[Any], n: int) -> list[int]:
    """Insert `n` posts and a classification for each; the classification ids, in order."""
    ids = insert_posts(conn, [f"post {i}" for i in range(n)])
    return [save_classification(conn, i, Classification("negative", 0.75, "m@1")).id for i in ids]


def wait_listening(conn: psycopg.Connection[Any], count: int = 1) -> None:
    """Wait until `count` watchers listen and have run their catch-up query."""

    def ready() -> bool:
        row = conn.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'volfefe watch'"
            " AND datname = current_database()"  # other tests' watchers share the server
            " AND state = 'idle' AND query LIKE %(q)s",
            {"q": "%FROM classifications%WHERE id >%"},
        ).fetchone()
        return row is not None and row["n"] >= count

    eventually(ready, timeout=60)


class WatchProcess:
    """`python -m volfefe watch --json [--since ID]`, its stdout read line by line."""

    def __init__(self, url: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "volfefe", "watch", "--json", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "DATABASE_URL": url},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.decode())

    def next(self, timeout: float = 30.0) -> dict[str, Any]:
        """The next printed result (AssertionError if none comes within `timeout`)."""
        try:
            return dict(json.loads(self.lines.get(timeout=timeout)))
        except queue.Empty:
            raise AssertionError(f"no line within {timeout} s; stderr: {self.stderr()}") from None

    def nothing_more(self) -> bool:
        """True when no line is waiting (call after the process printed what it had)."""
        return self.lines.empty()

    def stderr(self) -> str:
        """What the process wrote to stderr, once it has exited."""
        if self.proc.poll() is None or self.proc.stderr is None or self.proc.stderr.closed:
            return "(not available)"
        return self.proc.stderr.read().decode(errors="replace")

    def stop(self) -> None:
        """SIGTERM and reap."""
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
