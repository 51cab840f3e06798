"""Periodic tasks with several job workers: each tick is deferred once, whoever defers it."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.helpers import eventually
from tests.jobs.conftest import StartWorker
from tests.jobs.helpers import (
    ENQUEUE_TASK,
    classifications_per_post,
    insert_posts,
    jobs_per_post,
    registered_workers,
)

DEADLINE = 120.0
TICKS = 6  # seconds of ticks to watch once both workers defer


def ticks(conn: psycopg.Connection[Any]) -> dict[int, int]:
    """Defer timestamp of the periodic enqueue -> number of jobs deferred for it."""
    rows = conn.execute(
        "SELECT (args ->> 'timestamp')::bigint AS ts, count(*) AS n FROM procrastinate_jobs"
        " WHERE task_name = %(task)s GROUP BY 1",
        {"task": ENQUEUE_TASK},
    ).fetchall()
    return {row["ts"]: row["n"] for row in rows}


@pytest.mark.slow
def test_two_workers_defer_each_tick_once(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    posts = insert_posts(db_conn, ["Stocks rally", "Oil slides", "Gold shines", "Yen weakens"])
    every_second = {"VOLFEFE_JOBS_ENQUEUE_CRON": "* * * * * */1"}
    workers = [start_worker(database_url, concurrency=2, **every_second) for _ in range(2)]

    eventually(lambda: registered_workers(db_conn) == 2, timeout=DEADLINE)
    both_up = max(ticks(db_conn), default=0)
    eventually(lambda: len([t for t in ticks(db_conn) if t > both_up]) >= TICKS, DEADLINE)
    eventually(lambda: classifications_per_post(db_conn) == dict.fromkeys(posts, 1), DEADLINE)
    # Later posts are picked up by a later tick, too.
    [late] = insert_posts(db_conn, ["Bitcoin jumps"])
    eventually(lambda: classifications_per_post(db_conn).get(late) == 1, timeout=DEADLINE)
    for worker in workers:
        assert worker.terminate() == 0

    per_tick = ticks(db_conn)
    assert per_tick and set(per_tick.values()) == {1}, {t: n for t, n in per_tick.items() if n > 1}
    # One tick per second from the first to the last: none skipped while both ran.
    watched = sorted(t for t in per_tick if t > both_up)
    assert watched == list(range(watched[0], watched[-1] + 1))
    assert jobs_per_post(db_conn) == dict.fromkeys([*posts, late], 1)
    assert classifications_per_post(db_conn) == dict.fromkeys([*posts, late], 1)
    defers = db_conn.execute(
        "SELECT count(*) AS n, count(DISTINCT defer_timestamp) AS ticks"
        " FROM procrastinate_periodic_defers WHERE task_name = %(task)s",
        {"task": ENQUEUE_TASK},
    ).fetchone()
    assert defers is not None and defers["n"] == defers["ticks"]
