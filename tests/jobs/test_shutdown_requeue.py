"""A job still running when the shutdown grace ends is cancelled and queued again, not lost.

classify_post is async, so procrastinate cancels it after `VOLFEFE_SHUTDOWN_GRACE`; the
cancellation is not the post's failure, so the retry policy puts it back at once.
"""

from __future__ import annotations

from typing import Any

import psycopg

from tests.helpers import eventually
from tests.jobs.conftest import StartWorker
from tests.jobs.helpers import (
    classifications_per_post,
    enqueue_posts,
    insert_posts,
    job,
    status_of,
)

DEADLINE = 120.0


def test_job_cancelled_by_shutdown_is_queued_again_and_then_classified(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    [post] = insert_posts(db_conn, ["Bonds rally as yields fall"])
    [job_id] = enqueue_posts(db_conn, [post])
    slow = start_worker(
        database_url,
        fault="delay=60",
        once=False,
        VOLFEFE_SHUTDOWN_GRACE="1",
        VOLFEFE_CALL_TIMEOUT="120",
    )
    eventually(lambda: status_of(db_conn, job_id) == "doing", timeout=DEADLINE)
    assert slow.terminate() == 0
    queued_again = job(db_conn, job_id)
    assert (queued_again["status"], queued_again["attempts"]) == ("todo", 1)

    start_worker(database_url)
    eventually(lambda: status_of(db_conn, job_id) == "succeeded", timeout=DEADLINE)
    assert classifications_per_post(db_conn) == {post: 1}
