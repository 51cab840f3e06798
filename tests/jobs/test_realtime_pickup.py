"""A plain INSERT INTO contents is classified and announced without waiting for a poll.

```
worker (poll interval 120 s: only a NOTIFY can wake it) listening
INSERT INTO contents ... (auto-enqueue trigger -> procrastinate job -> its NOTIFY)
  -> the worker fetches, classifies, stores -> NOTIFY volfefe_classified -> watch() yields it
```
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from tests.helpers import eventually
from tests.jobs.conftest import StartWorker
from tests.jobs.helpers import insert_posts
from volfefe.store.signals import watch
from volfefe.store.switches import set_auto_enqueue

pytestmark = [pytest.mark.db, pytest.mark.slow]

POLL = 120.0


def listening(conn: psycopg.Connection[Any]) -> bool:
    """True once procrastinate's listener connection has run its LISTEN."""
    row = conn.execute(
        "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'LISTEN %%procrastinate_queue_v1%%'"
        " OR (query = 'SELECT 1' AND application_name = '')"
    ).fetchone()
    return row is not None


def test_inserted_posts_are_signalled_long_before_the_poll(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    set_auto_enqueue(db_conn, True)
    worker = start_worker(database_url, concurrency=4, VOLFEFE_JOBS_POLL_INTERVAL=str(POLL))
    eventually(lambda: listening(db_conn), timeout=120)
    stream = watch(database_url, timeout=60)
    try:
        for text in ("Tariffs hit exporters", "Stocks rally on the deal"):
            started = time.monotonic()
            [post] = insert_posts(db_conn, [text])
            signal = next(stream)
            assert signal.content_id == post
            assert time.monotonic() - started < 10.0, worker.log()  # the poll: 120 s
    finally:
        stream.close()
    attempts = db_conn.execute(
        "SELECT outcome, count(*) AS n FROM volfefe_job_attempts GROUP BY outcome"
    ).fetchall()
    assert attempts == [{"outcome": "classified", "n": 2}]
