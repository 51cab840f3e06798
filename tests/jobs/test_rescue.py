"""The stalled-job rescue against real PostgreSQL: one re-queue per stalled run, whoever races,
and maintenance jobs fetched ahead of a classification backlog.

```
dead worker (old heartbeat) holds job J in `doing`
rescue A ─┐  both see J stalled; the test holds J's row lock until both are under way,
rescue B ─┘  then lets go: J is re-queued once, one attempt recorded, no rescue fails
```
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from procrastinate.periodic import PeriodicDeferrer

from tests.helpers import aeventually
from tests.jobs.helpers import attempts, enqueue_posts, insert_posts, job
from volfefe.config import Settings
from volfefe.jobs.app import MAINTENANCE_QUEUE, make_app, rescue_stalled
from volfefe.jobs.connections import open_db_pool
from volfefe.jobs.deps import JobDeps
from volfefe.jobs.queue import QUEUE, TASK
from volfefe.supervisor.classifier import Classifier

DEADLINE = 30.0
WAITING_ON_LOCKS = """
SELECT count(*) AS n FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'
"""
WORKER = """
INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - %(age)s::interval) RETURNING id
"""
FETCH = "SELECT id FROM procrastinate_fetch_job_v2(%(queues)s::varchar[], %(worker)s)"
REQUEUE = "SELECT procrastinate_retry_job_v2(%(id)s, now(), NULL, NULL, NULL)"
ROW_LOCK = "SELECT id FROM procrastinate_jobs WHERE id = %(id)s FOR UPDATE"


def worker_row(conn: psycopg.Connection[Any], seconds_since_beat: float) -> int:
    """Register a procrastinate worker whose last heartbeat was that long ago."""
    row = conn.execute(WORKER, {"age": f"{seconds_since_beat} seconds"}).fetchone()
    assert row is not None
    return int(row["id"] if isinstance(row, dict) else row[0])


def fetch_as(conn: psycopg.Connection[Any], worker_id: int, job_id: int) -> None:
    """Take the next classification job for `worker_id`, as its fetch would; it must be `job_id`."""
    row = conn.execute(FETCH, {"queues": [QUEUE], "worker": worker_id}).fetchone()
    assert row is not None
    assert (row["id"] if isinstance(row, dict) else row[0]) == job_id


def waiting_on_locks(conn: psycopg.Connection[Any]) -> int:
    """Backends of this test's database blocked on a lock."""
    row = conn.execute(WAITING_ON_LOCKS).fetchone()
    return int(row["n"]) if row else 0


@contextmanager
def rescuer(database_url: str) -> Iterator[Callable[[], Awaitable[int]]]:
    """`rescue_stalled` as the periodic task runs it, in a thread (stalled after 3 s)."""
    settings = Settings(database_url=database_url, jobs_heartbeat=1, jobs_stalled_after=3)
    db = open_db_pool(database_url, 4)
    # The classifier is never started: the rescue classifies nothing.
    deps = JobDeps(Classifier(settings), db, settings)
    try:
        yield lambda: asyncio.to_thread(rescue_stalled, deps)
    finally:
        db.close()
        deps.classifier.close()


async def test_two_rescues_at_once_requeue_a_stalled_job_once(
    database_url: str, db_conn: psycopg.Connection[Any]
) -> None:
    [post] = insert_posts(db_conn, ["Stocks rally"])
    [job_id] = enqueue_posts(db_conn, [post])
    fetch_as(db_conn, worker_row(db_conn, 3600), job_id)  # a worker that died mid-job

    with rescuer(database_url) as rescue:
        with psycopg.connect(database_url) as holder:  # holds J's row lock until commit
            holder.execute(ROW_LOCK, {"id": job_id})
            runs = [asyncio.ensure_future(rescue()) for _ in range(2)]
            # Both rescues are under way: blocked on the row, or done (skipped) already.
            await aeventually(
                lambda: waiting_on_locks(db_conn) + sum(r.done() for r in runs) == 2, DEADLINE
            )
            holder.commit()
        outcomes = await asyncio.gather(*runs, return_exceptions=True)

    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    assert sorted(outcomes) == [0, 1]  # type: ignore[type-var]
    row = job(db_conn, job_id)
    assert (row["status"], row["attempts"]) == ("todo", 1)
    assert [a[:3] for a in attempts(db_conn, job_id)] == [(1, "rescued", "WorkerError")]


async def test_a_rescue_with_a_stale_view_leaves_the_rerun_alone(
    database_url: str, db_conn: psycopg.Connection[Any]
) -> None:
    """A rescue that saw the job stalled, but reaches it after another rescue re-queued it
    and a live worker took it again, must not re-queue it: it would run twice at once."""
    [post] = insert_posts(db_conn, ["Oil slides"])
    [job_id] = enqueue_posts(db_conn, [post])
    fetch_as(db_conn, worker_row(db_conn, 3600), job_id)
    live = worker_row(db_conn, 0)

    with rescuer(database_url) as rescue:
        with psycopg.connect(database_url) as other:  # the first rescue, then the live fetch
            other.execute(REQUEUE, {"id": job_id})
            fetch_as(other, live, job_id)
            late = asyncio.ensure_future(rescue())
            await aeventually(lambda: waiting_on_locks(db_conn) == 1 or late.done(), DEADLINE)
            other.commit()
        assert await late == 0

    row = job(db_conn, job_id)
    assert (row["status"], row["attempts"], row["worker_id"]) == ("doing", 1, live)
    assert attempts(db_conn, job_id) == []


async def test_maintenance_jobs_are_fetched_before_a_classification_backlog(
    database_url: str, db_conn: psycopg.Connection[Any]
) -> None:
    posts = insert_posts(db_conn, [f"Backlog post {n}" for n in range(30)])
    enqueue_posts(db_conn, posts)
    every_minute = "* * * * *"
    settings = Settings(
        database_url=database_url,
        jobs_enqueue_cron=every_minute,
        jobs_prune_cron=every_minute,
        jobs_rescue_cron=every_minute,
    )
    app = make_app(settings, database_url)
    async with app.open_async():
        deferrer = PeriodicDeferrer(registry=app.periodic_registry)  # what each worker runs
        await deferrer.defer_jobs(deferrer.get_previous_tasks(at=time.time()))
        worker_id = await app.job_manager.register_worker()
        fetched = []
        for _ in range(4):
            found = await app.job_manager.fetch_job([QUEUE, MAINTENANCE_QUEUE], worker_id)
            assert found is not None
            fetched.append((found.queue, found.task_name))

    assert sorted(fetched[:3]) == [
        (MAINTENANCE_QUEUE, "volfefe.enqueue_unclassified"),
        (MAINTENANCE_QUEUE, "volfefe.prune_jobs"),
        (MAINTENANCE_QUEUE, "volfefe.rescue_stalled_jobs"),
    ]
    assert fetched[3] == (QUEUE, TASK)
