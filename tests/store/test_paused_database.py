"""A paused database (SIGSTOP): noticed within a bounded time and handled like a drop.

The server is a throwaway pgserver instance of this test module (never the shared one): its
postmaster and every backend are stopped with SIGSTOP, and continued at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fixtures_db import import_pgserver
from volfefe.config import Settings
from volfefe.errors import DatabaseUnavailable
from volfefe.store.connect import connect, with_limits
from volfefe.store.deadline import MARGIN

LIMITS = Settings(db_statement_timeout=1, db_connect_timeout=2, db_keepalive=2)


@pytest.fixture(scope="module")
def throwaway_server() -> Iterator[tuple[str, Path]]:
    """(admin URL, pgdata) of a pgserver instance private to this module."""
    folder = Path(tempfile.mkdtemp(prefix="volfefe-paused-pg-"))
    server = import_pgserver().get_server(folder / "pgdata", cleanup_mode="delete")
    try:
        yield str(server.get_uri("postgres")), folder / "pgdata"
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def server_pids(pgdata: Path) -> list[int]:
    """The postmaster and its children (backends, background workers)."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                children.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return [postmaster, *children]


def send(pids: list[int], sig: signal.Signals) -> None:
    """Signal each process (one that exited meanwhile is fine)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def test_a_paused_database_fails_statements_and_connects_in_bounded_time(
    throwaway_server: tuple[str, Path],
) -> None:
    admin_url, pgdata = throwaway_server
    url = with_limits(admin_url, LIMITS)
    conn = connect(url)
    assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
    pids = server_pids(pgdata)
    send(pids, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        waited = time.monotonic() - started
        assert waited < LIMITS.db_statement_timeout + MARGIN + 3, waited
        assert conn.closed or conn.broken

        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable):
            connect(url)
        waited = time.monotonic() - started
        assert waited < LIMITS.db_connect_timeout + 3, waited
    finally:
        send(pids, signal.SIGCONT)
        conn.close()

    with connect(url) as again:  # once the server answers, everything works again
        assert again.execute("SELECT 1 AS one").fetchone() == {"one": 1}
