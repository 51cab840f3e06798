"""PostgreSQL restarted under a running job worker: it recovers and no job is lost.

```
queue 40 posts -> worker (concurrency 2, 0.25 s per reply) -> 5 done -> pg_ctl stop -m fast
  long outage:  down until the worker logs "lost the database" (~90 s), start -> all done
  quick restart: start at once (~1 s) -> all done
```

The test owns its PostgreSQL server (pgserver in a temporary folder), so stopping it disturbs
no other test. As root, pgserver runs postgres as the `pgserver` user; pg_ctl runs as that user
through pgserver's helpers (`stop_embedded`), and pgserver's own start-up starts it again with
the same socket folder, so the worker's URL stays valid."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.fixtures_db import import_pgserver, stop_embedded
from tests.helpers import eventually
from tests.jobs.conftest import StartWorker
from tests.jobs.helpers import (
    classifications_per_post,
    classify_jobs,
    count_by_status,
    enqueue_posts,
    insert_posts,
)
from volfefe.store.connect import connect
from volfefe.store.migrate import migrate
from volfefe.store.switches import set_auto_enqueue

POSTS = 40
DEADLINE = 120.0
OUTAGE_DEADLINE = 240.0


class RestartableServer:
    """A private pgserver instance that a test may stop and start."""

    def __init__(self, server: Any, pgdata: Path) -> None:
        self.server = server
        self.pgdata = pgdata

    def url(self, dbname: str) -> str:
        """Connection URL of `dbname` on this server."""
        return str(self.server.get_uri(dbname))

    def stop(self) -> None:
        """`pg_ctl stop -m fast`: every connection is cut."""
        stop_embedded(self.pgdata)

    def start(self) -> None:
        """Start it again the way pgserver first did (same socket folder, same URL)."""
        self.server.ensure_postgres_running()


@pytest.fixture
def restartable_server() -> Iterator[RestartableServer]:
    """A pgserver of this test's own; stopped and deleted afterwards."""
    # Not under pytest's basetemp (see fixtures_db.embedded_server_url for why).
    folder = Path(tempfile.mkdtemp(prefix="volfefe-test-pg-restart-"))
    pgdata = folder / "pgdata"
    server = None
    try:
        server = import_pgserver().get_server(pgdata, cleanup_mode="delete")
        yield RestartableServer(server, pgdata)
    finally:
        if server is not None:
            server.cleanup()  # stops the server that `start` started, then deletes pgdata
        stop_embedded(pgdata)  # no-op unless a postmaster is still there
        shutil.rmtree(folder, ignore_errors=True)


def server_is_down(url: str) -> bool:
    """True when no connection can be opened."""
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return True
    return False


def queue_posts(server: RestartableServer) -> tuple[str, list[int]]:
    """A migrated database on `server` with POSTS posts queued; (its URL, the post ids)."""
    admin_url = server.url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("CREATE DATABASE volfefe_restart")
    url = make_conninfo(admin_url, dbname="volfefe_restart")
    with connect(url) as conn:
        migrate(conn)
        set_auto_enqueue(conn, False)  # as in the test template: the jobs are queued below
        posts = insert_posts(conn, [f"Stocks rally, day {i}" for i in range(POSTS)])
        enqueue_posts(conn, posts)
    return url, posts


def restart_under_a_worker(
    server: RestartableServer, start_worker: StartWorker, *, outage_until_noticed: bool
) -> None:
    """Restart PostgreSQL while a worker drains the queue; check that every job completes."""
    url, posts = queue_posts(server)
    # 0.25 s per reply: the queue takes ~10 s, so the restart lands in the middle of it.
    worker = start_worker(url, concurrency=2, fault="delay=0.25", once=False)

    def succeeded() -> int:
        assert worker.running(), f"the worker exited ({worker.proc.returncode})"
        with connect(url) as conn:
            return count_by_status(conn).get("succeeded", 0)

    eventually(lambda: succeeded() >= 5, timeout=DEADLINE)
    server.stop()
    assert server_is_down(url)
    if outage_until_noticed:  # docs/jobs.md: "the worker logs it and starts again when it is back"
        eventually(lambda: "lost the database" in worker.log(), timeout=OUTAGE_DEADLINE)
    server.start()

    eventually(lambda: succeeded() == POSTS, timeout=DEADLINE)
    with connect(url) as conn:
        assert count_by_status(conn) == {"succeeded": POSTS}
        assert sorted(j["content_id"] for j in classify_jobs(conn)) == posts
        assert classifications_per_post(conn) == dict.fromkeys(posts, 1)
    assert worker.terminate() == 0


@pytest.mark.db
@pytest.mark.slow
def test_worker_survives_a_long_database_outage(
    restartable_server: RestartableServer, start_worker: StartWorker
) -> None:
    # Down until the worker gave up on its connections (~90 s: each pending query waits
    # for the pools' 30 s timeout), so the worker restarts its loop on the connection error.
    restart_under_a_worker(restartable_server, start_worker, outage_until_noticed=True)


@pytest.mark.db
def test_worker_survives_a_quick_database_restart(
    restartable_server: RestartableServer, start_worker: StartWorker
) -> None:
    restart_under_a_worker(restartable_server, start_worker, outage_until_noticed=False)
