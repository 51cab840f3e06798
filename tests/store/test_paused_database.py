"""A paused database (SIGSTOP): noticed within a bounded time and handled like a drop.

The server is a throwaway pgserver instance of this test module (never the shared one): its
postmaster and every backend are stopped with SIGSTOP, and continued at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fixtures_db import fresh_database, import_pgserver
from tests.helpers import assert_no_unretrieved, eventually
from tests.jobs.helpers import insert_posts
from volfefe.config import Settings
from volfefe.errors import DatabaseUnavailable
from volfefe.store.connect import connect, with_limits
from volfefe.store.deadline import MARGIN, AsyncLimitedConnection
from volfefe.store.migrate import migrate

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


def test_a_classify_run_on_a_paused_database_stops_in_bounded_time(
    throwaway_server: tuple[str, Path], tiny_model: Path, tmp_path: Path
) -> None:
    admin_url, pgdata = throwaway_server
    with fresh_database(admin_url) as url:
        with connect(url) as conn:
            migrate(conn)
            ids = insert_posts(conn, [f"Stocks move {n}" for n in range(40)])
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "VOLFEFE_MODEL": str(tiny_model),
            "VOLFEFE_WORKERS": "1",
            "VOLFEFE_THREADS": "1",
            "VOLFEFE_BATCH_SIZE": "2",
            "VOLFEFE_WORKER_FAULT": "delay=0.3",
            "VOLFEFE_DB_STATEMENT_TIMEOUT": "1",
            "VOLFEFE_DB_CONNECT_TIMEOUT": "2",
        }
        err_path = tmp_path / "classify.err"
        with err_path.open("wb") as err:
            run = subprocess.Popen(
                [sys.executable, "-m", "volfefe", "-v", "classify", "--all"],
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
            )
        try:
            eventually(lambda: "[2/" in err_path.read_text(errors="replace"), timeout=120)
            pids = server_pids(pgdata)
            send(pids, signal.SIGSTOP)
            started = time.monotonic()
            try:
                out, _ = run.communicate(timeout=90)
            finally:
                send(pids, signal.SIGCONT)
            waited = time.monotonic() - started
        finally:
            run.kill()
            run.wait()
        err = err_path.read_text(errors="replace")
        assert run.returncode == 4, err[-3000:]  # DatabaseUnavailable
        assert b"Stopped early: DatabaseUnavailable" in out, out
        assert err.rstrip().splitlines()[-1].startswith("DatabaseUnavailable: "), err[-3000:]
        assert_no_unretrieved(err)
        # statement deadline (1 + 5 s), then 3 reconnects of at most 2 s with 0.5/1/2 s pauses
        assert waited < 1 + MARGIN + 3 * 3 + 3.5 + 10, waited
        with connect(url) as conn:  # nothing half-written: each stored post has one result
            rows = conn.execute(
                "SELECT count(*) AS n, count(DISTINCT content_id) AS posts FROM classifications"
            ).fetchone()
            assert rows is not None and rows["n"] == rows["posts"] < len(ids)


def test_the_async_connection_of_the_job_worker_has_the_same_deadline(
    throwaway_server: tuple[str, Path],
) -> None:
    """AsyncLimitedConnection (the job worker's pools, procrastinate's included) fails a
    statement on a paused server in bounded time, and leaves a LISTEN wait alone."""
    admin_url, pgdata = throwaway_server
    url = with_limits(admin_url, LIMITS)

    async def scenario() -> float:
        listener = await AsyncLimitedConnection.connect(url, autocommit=True)
        conn = await AsyncLimitedConnection.connect(url, autocommit=True)
        assert conn.client_deadline == LIMITS.db_statement_timeout + MARGIN
        await listener.execute("LISTEN volfefe_deadline_test")

        async def first_note() -> str:
            async for note in listener.notifies(stop_after=1):
                return note.payload
            return ""

        waiting = asyncio.create_task(first_note())
        # Past the deadline the notification wait is still running: it was not cut.
        done, _ = await asyncio.wait([waiting], timeout=conn.client_deadline + 1)
        assert not done
        await conn.execute("NOTIFY volfefe_deadline_test, 'still listening'")
        assert await waiting == "still listening"
        pids = server_pids(pgdata)
        send(pids, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(psycopg.OperationalError):
                await conn.execute("SELECT 1")
            return time.monotonic() - started
        finally:
            send(pids, signal.SIGCONT)
            await conn.close()
            await listener.close()

    waited = asyncio.run(scenario())
    assert waited < LIMITS.db_statement_timeout + MARGIN + 3, waited
