"""The job path's coalesced loads and stores against real PostgreSQL.

```
jobs asking at once ─▶ Coalescer ─▶ one SELECT / one INSERT ... unnest   (coalesce on)
                                 └▶ one statement per job                 (coalesce off)
the database ends the same either way: results, flags, attempt records, NOTIFYs, settled jobs

a real `jobs worker`, 20 jobs in flight: the test locks `sources` until the first load waits
on it (the others queue behind it) and deletes one post meanwhile; the worker's log at its
stop counts the rows and statements
```
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from tests.helpers import eventually
from tests.jobs.conftest import StartWorker
from tests.jobs.helpers import (
    attempts,
    classified_flags,
    count_by_status,
    enqueue_posts,
    insert_posts,
    job,
    registered_workers,
)
from volfefe.classify.coalesce import Coalescer, StoreRequest
from volfefe.errors import ContentNotFound
from volfefe.jobs.connections import open_async_db_pool
from volfefe.result import Classification
from volfefe.store.connect import connect

DEADLINE = 120.0
COUNTS = re.compile(r"job loads: (\d+) in (\d+) statements?; job stores: (\d+) in (\d+) statement")
WAITING_ON_LOCKS = """
SELECT count(*) AS n FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'
"""
RESULT = Classification("negative", 0.75, "tiny@1", {"negative": 0.75, "positive": 0.2})
FIRST = Classification("positive", 0.9, "other@1")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Any]:
    """The job worker's async pool on this test's database."""
    adb = open_async_db_pool(database_url, 4)
    await adb.open(wait=True)
    try:
        yield adb
    finally:
        await adb.close()


async def test_concurrent_loads_share_one_statement(
    pool: Any, db_conn: psycopg.Connection[Any]
) -> None:
    posts = insert_posts(db_conn, [f"post {i}" for i in range(10)])
    coalescer = Coalescer(pool)
    unknown = posts[-1] + 1000

    rows = await asyncio.gather(*(coalescer.load(i) for i in [*posts, unknown, posts[0]]))

    assert [row.id if row else None for row in rows] == [*posts, None, posts[0]]
    assert rows[3] is not None and rows[3].text == "post 3"
    assert (coalescer.loads.rows, coalescer.loads.statements) == (12, 1)


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "one-by-one"])
async def test_concurrent_stores_keep_each_jobs_outcome(
    pool: Any, db_conn: psycopg.Connection[Any], database_url: str, coalesce: bool
) -> None:
    fresh = insert_posts(db_conn, ["a", "b", "c", "d"])
    taken, gone = insert_posts(db_conn, ["e", "f"])
    # Another writer stored a result for `taken` first; `gone` is deleted before its store.
    db_conn.execute(
        "INSERT INTO classifications (content_id, sentiment, confidence, model_version)"
        " VALUES (%(id)s, 'positive', 0.9, 'other@1')",
        {"id": taken},
    )
    db_conn.execute("DELETE FROM contents WHERE id = %(id)s", {"id": gone})
    # A second, waiting job for fresh[0]: the stored result settles it (migration 0007).
    [waiting] = enqueue_posts(db_conn, [fresh[0]])
    coalescer = Coalescer(pool, coalesce=coalesce)
    requests = [
        StoreRequest(1000 + i, 1, content_id, RESULT)
        for i, content_id in enumerate([*fresh, taken, gone])
    ]
    with connect(database_url) as listener:
        listener.execute("LISTEN volfefe_classified")

        outcomes = await asyncio.gather(
            *(coalescer.store(request) for request in requests), return_exceptions=True
        )

        notes = list(listener.notifies(timeout=5.0, stop_after=len(fresh)))
    assert outcomes[:5] == [True, True, True, True, False]
    assert isinstance(outcomes[5], ContentNotFound)
    assert coalescer.stores.rows == 6
    assert coalescer.stores.statements == (1 if coalesce else 6)
    stored = db_conn.execute(
        "SELECT k.content_id, k.sentiment, k.confidence, k.meta, c.classified"
        " FROM classifications AS k JOIN contents AS c ON c.id = k.content_id"
        " WHERE k.content_id = ANY(%(ids)s) ORDER BY k.content_id",
        {"ids": [*fresh, taken]},
    ).fetchall()
    assert [(r["content_id"], r["sentiment"], r["classified"]) for r in stored] == [
        *((i, "negative", True) for i in fresh),
        (taken, "positive", False),  # the other writer's result is kept, as it stored it
    ]
    assert stored[0]["meta"] == RESULT.meta()
    assert len(notes) == len(fresh)
    recorded = [attempts(db_conn, 1000 + i) for i in range(6)]
    assert recorded == [
        *([(1, "classified", None, None)] for _ in fresh),
        [(1, "already_classified", None, None)],
        [],  # a job whose post is gone records its attempt as failed itself (jobs.app)
    ]
    assert job(db_conn, waiting)["status"] == "cancelled"
    assert attempts(db_conn, waiting) == [(1, "already_classified", None, None)]


async def test_a_refused_row_fails_only_its_job(
    pool: Any, db_conn: psycopg.Connection[Any]
) -> None:
    posts = insert_posts(db_conn, ["a", "b", "c", "d"])
    coalescer = Coalescer(pool)
    bad = Classification("neutral", 1.5, "tiny@1")  # breaks the confidence CHECK constraint
    results = [RESULT, bad, RESULT, RESULT]

    outcomes = await asyncio.gather(
        *(
            coalescer.store(StoreRequest(2000 + i, 1, post, result))
            for i, (post, result) in enumerate(zip(posts, results, strict=True))
        ),
        return_exceptions=True,
    )

    assert outcomes[0] is True and outcomes[2:] == [True, True]
    assert isinstance(outcomes[1], psycopg.errors.CheckViolation)
    # the statement of all four, refused; then each row on its own
    assert (coalescer.stores.rows, coalescer.stores.statements) == (4, 5)
    flags = db_conn.execute(
        "SELECT id, classified FROM contents WHERE id = ANY(%(ids)s) ORDER BY id", {"ids": posts}
    ).fetchall()
    assert [row["classified"] for row in flags] == [True, False, True, True]
    assert attempts(db_conn, 2001) == []


async def test_two_jobs_of_one_post_go_into_two_statements(
    pool: Any, db_conn: psycopg.Connection[Any]
) -> None:
    [post] = insert_posts(db_conn, ["a"])
    coalescer = Coalescer(pool)

    outcomes = await asyncio.gather(
        coalescer.store(StoreRequest(3000, 1, post, RESULT)),
        coalescer.store(StoreRequest(3001, 1, post, FIRST)),
    )

    assert outcomes == [True, False]  # in the order asked, as two statements would store them
    assert coalescer.stores.statements == 2
    assert attempts(db_conn, 3001) == [(1, "already_classified", None, None)]


async def test_a_cancelled_job_leaves_the_others_their_outcome(
    pool: Any, db_conn: psycopg.Connection[Any]
) -> None:
    posts = insert_posts(db_conn, ["a", "b", "c"])
    coalescer = Coalescer(pool)
    loads = [asyncio.ensure_future(coalescer.load(post)) for post in posts]
    await asyncio.sleep(0)  # each has put its id in; the statement starts on the next turn
    loads[1].cancel()  # its id is left out of the statement

    done = await asyncio.gather(*loads, return_exceptions=True)

    assert isinstance(done[1], asyncio.CancelledError)
    assert [row.id for row in (done[0], done[2]) if not isinstance(row, BaseException)] == [
        posts[0],
        posts[2],
    ]
    assert (coalescer.loads.rows, coalescer.loads.statements) == (2, 1)
    await coalescer.wait_idle()


@pytest.mark.parametrize("switch", ["on", "off"])
def test_a_worker_loads_and_stores_its_concurrent_jobs_together(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker, switch: str
) -> None:
    posts = insert_posts(db_conn, [f"stocks rally {i}" for i in range(20)])
    gone = posts[7]
    worker = start_worker(database_url, concurrency=20, VOLFEFE_JOBS_COALESCE=switch)
    eventually(lambda: registered_workers(db_conn) == 1, timeout=DEADLINE)
    with connect(database_url) as blocker, blocker.transaction():
        blocker.execute("LOCK TABLE sources IN ACCESS EXCLUSIVE MODE")  # a post's load waits
        jobs = enqueue_posts(db_conn, posts)
        eventually(
            lambda: (
                count_by_status(db_conn).get("doing") == len(posts)
                and waiting_on_locks_in(db_conn) > 0
            ),
            timeout=DEADLINE,
        )
        db_conn.execute("DELETE FROM contents WHERE id = %(id)s", {"id": gone})

    eventually(
        lambda: count_by_status(db_conn) == {"succeeded": len(posts) - 1, "failed": 1},
        timeout=DEADLINE,
    )
    assert worker.terminate() == 0

    kept = [post for post in posts if post != gone]
    assert classified_flags(db_conn, kept) == [True] * len(kept)
    assert [a[:3] for a in attempts(db_conn, jobs[7])] == [(1, "failed", "ContentNotFound")]
    match = COUNTS.search(worker.log())
    assert match is not None, worker.log()
    loads, load_statements, stores, store_statements = map(int, match.groups())
    assert (loads, stores) == (len(posts), len(kept))
    if switch == "off":
        assert (load_statements, store_statements) == (loads, stores)
        return
    # The first load alone (it met the lock), the 19 queued behind it in one or two more; the
    # results come back from the child's batches together and are stored together.
    assert load_statements <= 4, match.group(0)
    assert store_statements <= len(kept) // 2, match.group(0)


def waiting_on_locks_in(conn: psycopg.Connection[Any]) -> int:
    """Backends of this test's database blocked on a lock."""
    row = conn.execute(WAITING_ON_LOCKS).fetchone()
    return int(row["n"]) if row else 0
