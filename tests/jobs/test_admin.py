"""`volfefe jobs retry` and `volfefe jobs prune` as users run them, with a real job worker."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from tests.helpers import eventually
from tests.jobs.conftest import StartWorker
from tests.jobs.helpers import (
    attempts,
    classifications_per_post,
    classify_jobs,
    enqueue_posts,
    insert_posts,
    status_of,
    volfefe,
)

DEADLINE = 120.0
RESTORE = """
INSERT INTO contents (id, source_id, external_id, text)
SELECT %(id)s, id, 'restored-' || %(id)s, 'Stocks recover' FROM sources WHERE name = 'jobs-test'
"""


def test_retry_failed_jobs_by_id_and_all(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    keep, first, second = insert_posts(db_conn, ["Anchor post", "Gone one", "Gone two"])
    db_conn.execute("DELETE FROM contents WHERE id IN (%(a)s, %(b)s)", {"a": first, "b": second})
    first_job, second_job = enqueue_posts(db_conn, [first, second])
    worker = start_worker(database_url)
    eventually(
        lambda: [status_of(db_conn, j) for j in (first_job, second_job)] == ["failed"] * 2,
        timeout=DEADLINE,
    )

    unknown = volfefe(database_url, "jobs", "retry", str(second_job + 1000))
    assert (unknown.returncode, unknown.stdout) == (1, "")
    assert unknown.stderr.endswith(f"JobNotFound: job {second_job + 1000} not found\n")

    assert db_conn.execute(RESTORE, {"id": first}).rowcount == 1
    retried = volfefe(database_url, "jobs", "retry", str(first_job))
    assert (retried.returncode, retried.stdout) == (0, f"job {first_job}: retried\n")
    eventually(lambda: status_of(db_conn, first_job) == "succeeded", timeout=DEADLINE)
    assert [r[1:3] for r in attempts(db_conn, first_job)] == [
        ("failed", "ContentNotFound"),
        ("classified", None),
    ]

    again = volfefe(database_url, "jobs", "retry", str(first_job))
    assert again.returncode == 1
    assert again.stdout == f"job {first_job}: not failed (status succeeded)\n"

    assert db_conn.execute(RESTORE, {"id": second}).rowcount == 1
    every = volfefe(database_url, "jobs", "retry", "--failed")
    assert (every.returncode, every.stdout) == (0, f"job {second_job}: retried\n")
    eventually(lambda: status_of(db_conn, second_job) == "succeeded", timeout=DEADLINE)
    assert classifications_per_post(db_conn) == {first: 1, second: 1}
    assert keep not in classifications_per_post(db_conn)

    none_left = volfefe(database_url, "jobs", "retry", "--failed")
    assert (none_left.returncode, none_left.stdout) == (0, "no failed jobs to retry\n")
    assert worker.terminate() == 0


@pytest.mark.slow
def test_retry_a_poison_job_once_the_fault_is_gone(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    [post] = insert_posts(db_conn, ["POISONWORD in the text"])
    [job_id] = enqueue_posts(db_conn, [post])
    poisoned = start_worker(database_url, fault="poison=POISONWORD", once=False)
    eventually(lambda: status_of(db_conn, job_id) == "failed", timeout=DEADLINE)
    assert poisoned.terminate() == 0

    start_worker(database_url)  # the model was fixed: no fault any more
    retried = volfefe(database_url, "jobs", "retry", str(job_id))
    assert (retried.returncode, retried.stdout) == (0, f"job {job_id}: retried\n")
    eventually(lambda: status_of(db_conn, job_id) == "succeeded", timeout=DEADLINE)
    assert [r[1] for r in attempts(db_conn, job_id)] == ["quarantined", "classified"]
    lifted = db_conn.execute(
        "SELECT quarantined_at FROM contents WHERE id = %(id)s", {"id": post}
    ).fetchone()
    assert lifted == {"quarantined_at": None}, "a stored result lifts the quarantine"
    assert classifications_per_post(db_conn) == {post: 1}


def test_a_manual_retry_is_recorded_as_the_next_attempt(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    [post] = insert_posts(db_conn, ["Soon gone"])
    db_conn.execute("DELETE FROM contents WHERE id = %(id)s", {"id": post})
    [job_id] = enqueue_posts(db_conn, [post])
    start_worker(database_url)
    eventually(lambda: status_of(db_conn, job_id) == "failed", timeout=DEADLINE)

    assert db_conn.execute(RESTORE, {"id": post}).rowcount == 1
    assert volfefe(database_url, "jobs", "retry", str(job_id)).returncode == 0
    eventually(lambda: status_of(db_conn, job_id) == "succeeded", timeout=DEADLINE)
    assert [r[:2] for r in attempts(db_conn, job_id)] == [(1, "failed"), (2, "classified")]


def test_prune_deletes_finished_jobs_only(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    done = insert_posts(db_conn, ["Stocks rally", "Oil slides"])
    enqueue_posts(db_conn, done)
    worker = start_worker(database_url)
    eventually(
        lambda: [j["status"] for j in classify_jobs(db_conn)] == ["succeeded"] * 2,
        timeout=DEADLINE,
    )
    assert worker.terminate() == 0  # no more periodic jobs: the counts below are exact
    [waiting] = insert_posts(db_conn, ["Gold shines"])
    [waiting_job] = enqueue_posts(db_conn, [waiting])
    finished = db_conn.execute(
        "SELECT count(*) AS n FROM procrastinate_jobs"
        " WHERE status IN ('succeeded', 'failed', 'cancelled', 'aborted')"
    ).fetchone()
    assert finished is not None and finished["n"] >= 2  # with the maintenance jobs

    recent = volfefe(database_url, "jobs", "prune", "--older-than", "7d")
    assert (recent.returncode, recent.stdout) == (0, "deleted 0 finished jobs\n")
    pruned = volfefe(database_url, "jobs", "prune", "--older-than", "0s")
    assert (pruned.returncode, pruned.stdout) == (0, f"deleted {finished['n']} finished jobs\n")

    assert [(j["id"], j["status"]) for j in classify_jobs(db_conn)] == [(waiting_job, "todo")]
    left = db_conn.execute("SELECT count(*) AS n FROM volfefe_job_attempts").fetchone()
    assert left == {"n": 0}, "attempt records go with their jobs"
    assert classifications_per_post(db_conn) == dict.fromkeys(done, 1)


def test_prune_with_a_bad_age_is_a_usage_error(database_url: str) -> None:
    proc = volfefe(database_url, "jobs", "prune", "--older-than", "x")
    assert proc.returncode == 2
    assert re.search(r"expected a duration such as 7d, 12h or 30m, got 'x'", proc.stderr)
