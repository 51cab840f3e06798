"""Retries of classification jobs: transient errors retried, permanent ones (poison too) not.

Each test runs a real `volfefe jobs worker` process whose child misbehaves on purpose
(VOLFEFE_WORKER_FAULT) and reads the outcome from procrastinate_jobs and volfefe_job_attempts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import eventually
from tests.jobs.conftest import StartWorker
from tests.jobs.helpers import (
    attempts,
    classifications_per_post,
    enqueue_posts,
    insert_posts,
    job,
    status_of,
)
from tests.store.helpers import result
from volfefe.jobs.queue import enqueue
from volfefe.store.posts import save_classification

DEADLINE = 120.0


@pytest.mark.parametrize(
    ("fault", "env"),
    [("crash@1", {}), ("hang@1", {"VOLFEFE_CALL_TIMEOUT": "1"})],
)
def test_a_lone_text_whose_child_fails_once_is_classified_not_quarantined(
    database_url: str,
    db_conn: psycopg.Connection[Any],
    start_worker: StartWorker,
    tmp_path: Path,
    fault: str,
    env: dict[str, str],
) -> None:
    """A child killed or hung once under a lone text (the OOM killer, an operator) is not the
    text's fault: the pool retries it alone on a fresh child, within the same job attempt."""
    [post] = insert_posts(db_conn, ["Stocks rally after the rate cut"])
    [job_id] = enqueue_posts(db_conn, [post])
    start_worker(database_url, fault=fault, **env)

    eventually(lambda: status_of(db_conn, job_id) == "succeeded", timeout=DEADLINE)

    assert attempts(db_conn, job_id) == [(1, "classified", None, None)]
    assert job(db_conn, job_id)["attempts"] == 1
    assert classifications_per_post(db_conn) == {post: 1}
    quarantined = db_conn.execute(
        "SELECT quarantined_at FROM contents WHERE id = %(id)s", {"id": post}
    ).fetchone()
    assert quarantined == {"quarantined_at": None}
    assert (tmp_path / "fault-fired").exists(), "the fault fired: the first child did fail"


def test_permanent_errors_fail_at_once_and_done_posts_succeed(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    empty, done, fresh = insert_posts(db_conn, ["", "Markets tumble", "Bonds steady"])
    save_classification(db_conn, done, result("negative"))
    missing = fresh + 1000  # enqueue does not check that the post exists
    missing_job, empty_job, done_job, fresh_job = enqueue_posts(
        db_conn, [missing, empty, done, fresh]
    )
    start_worker(database_url, concurrency=2)

    finished = (missing_job, empty_job, done_job, fresh_job)
    eventually(
        lambda: all(status_of(db_conn, j) in ("succeeded", "failed") for j in finished),
        timeout=DEADLINE,
    )

    for job_id, error_type in ((missing_job, "ContentNotFound"), (empty_job, "NoTextError")):
        row = job(db_conn, job_id)
        assert (row["status"], row["attempts"]) == ("failed", 1), row
        [(attempt, outcome, kind, message)] = attempts(db_conn, job_id)
        assert (attempt, outcome, kind) == (1, "failed", error_type)
        assert message
    assert status_of(db_conn, done_job) == "succeeded"
    assert attempts(db_conn, done_job) == [(1, "already_classified", None, None)]
    assert attempts(db_conn, fresh_job) == [(1, "classified", None, None)]
    assert classifications_per_post(db_conn) == {done: 1, fresh: 1}


def test_poison_post_is_quarantined_at_once_and_the_worker_carries_on(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    poison, *others = insert_posts(
        db_conn, ["POISONWORD kills the child", "Stocks rally", "Oil slides", "Gold shines"]
    )
    poison_job, *other_jobs = enqueue_posts(db_conn, [poison, *others])
    worker = start_worker(database_url, concurrency=2, fault="poison=POISONWORD", once=False)

    eventually(lambda: status_of(db_conn, poison_job) == "failed", timeout=DEADLINE)

    assert job(db_conn, poison_job)["attempts"] == 1
    records = attempts(db_conn, poison_job)
    assert [(a, outcome, kind) for a, outcome, kind, _ in records] == [
        (1, "quarantined", "PoisonText")
    ]
    eventually(
        lambda: all(status_of(db_conn, j) == "succeeded" for j in other_jobs), timeout=DEADLINE
    )
    # Still working after the poison gave up: a post queued now is classified too.
    [late] = insert_posts(db_conn, ["Late news: futures climb"])
    late_job = enqueue(db_conn, [late]).queued[late]
    eventually(lambda: status_of(db_conn, late_job) == "succeeded", timeout=DEADLINE)
    assert worker.running()
    assert classifications_per_post(db_conn) == dict.fromkeys([*others, late], 1)
    assert status_of(db_conn, poison_job) == "failed"
