"""Enqueueing classification jobs: at most one waiting or running job per post.

Through the CLI as users run it (`jobs enqueue`, `import --enqueue`, `jobs status`), with a
real job worker where a job must be running or waiting for its retry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from tests.helpers import eventually
from tests.jobs.conftest import StartWorker
from tests.jobs.helpers import (
    attempts,
    classifications_per_post,
    classify_jobs,
    count_by_status,
    enqueue_posts,
    insert_posts,
    job,
    jobs_per_post,
    status_of,
    volfefe,
    volfefe_json,
    write_jsonl,
)
from tests.store.helpers import post as post_record
from volfefe.jobs.queue import enqueue, unclassified_ids
from volfefe.store.connect import connect

DEADLINE = 120.0


def enqueue_cli(database_url: str, *args: str) -> dict[str, Any]:
    """`volfefe jobs enqueue ARGS --json` as a dict: queued, already_queued, not_found."""
    report: dict[str, Any] = volfefe_json(database_url, "jobs", "enqueue", *args, "--json")
    return report


def test_enqueue_twice_queues_each_post_once(
    database_url: str, db_conn: psycopg.Connection[Any]
) -> None:
    a, b, c, d, blank = insert_posts(db_conn, ["Stocks up", "Stocks down", "Oil", "Gold", " "])
    ids = f"{a},{b}"

    assert enqueue_cli(database_url, "--ids", ids) == {
        "queued": 2,
        "already_queued": [],
        "not_found": [],
    }
    assert enqueue_cli(database_url, "--ids", ids) == {
        "queued": 0,
        "already_queued": [a, b],
        "not_found": [],
    }
    assert enqueue_cli(database_url, "--limit", "3") == {
        "queued": 1,
        "already_queued": [a, b],
        "not_found": [],
    }
    assert enqueue_cli(database_url, "--all") == {
        "queued": 1,
        "already_queued": [a, b, c],
        "not_found": [],
    }
    assert enqueue_cli(database_url, "--all") == {
        "queued": 0,
        "already_queued": [a, b, c, d],
        "not_found": [],
    }
    assert enqueue_cli(database_url, "--limit", "10") == {
        "queued": 0,
        "already_queued": [a, b, c, d],
        "not_found": [],
    }

    assert jobs_per_post(db_conn) == dict.fromkeys([a, b, c, d], 1)  # none for the blank post
    assert blank not in jobs_per_post(db_conn)
    plain = volfefe(database_url, "jobs", "enqueue", "--ids", ids)
    assert (plain.returncode, plain.stdout) == (0, "queued 0, already queued 2\n")


def test_enqueue_while_the_job_runs_is_already_queued(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    [post] = insert_posts(db_conn, ["Stocks rally on jobs data"])
    [job_id] = enqueue_posts(db_conn, [post])
    start_worker(database_url, fault="delay=6", once=False)

    eventually(lambda: status_of(db_conn, job_id) == "doing", timeout=DEADLINE)
    assert enqueue_cli(database_url, "--ids", str(post)) == {
        "queued": 0,
        "already_queued": [post],
        "not_found": [],
    }
    assert enqueue_cli(database_url, "--all") == {
        "queued": 0,
        "already_queued": [post],
        "not_found": [],
    }
    assert status_of(db_conn, job_id) == "doing", "the check must run while the job runs"

    eventually(lambda: status_of(db_conn, job_id) == "succeeded", timeout=DEADLINE)
    assert jobs_per_post(db_conn) == {post: 1}
    assert classifications_per_post(db_conn) == {post: 1}


def test_enqueue_while_the_job_waits_for_its_retry_is_already_queued(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    [post] = insert_posts(db_conn, ["Treasury yields jump"])
    [job_id] = enqueue_posts(db_conn, [post])
    # A transient failure: the post's row is locked, so storing the result runs into the
    # 1 s statement timeout. The retry waits backoff ** 1 = 8 s: time enough to enqueue.
    locker = connect(database_url, autocommit=False)
    try:
        locker.execute("SELECT id FROM contents WHERE id = %(id)s FOR UPDATE", {"id": post})
        start_worker(database_url, VOLFEFE_JOBS_BACKOFF="8", VOLFEFE_DB_STATEMENT_TIMEOUT="1")
        eventually(lambda: waiting_for_retry(db_conn, job_id), timeout=DEADLINE)
    finally:
        locker.close()  # rolls back: the retry can store its result
    assert enqueue_cli(database_url, "--ids", str(post)) == {
        "queued": 0,
        "already_queued": [post],
        "not_found": [],
    }
    assert waiting_for_retry(db_conn, job_id), "the check must run while the retry is pending"

    eventually(lambda: status_of(db_conn, job_id) == "succeeded", timeout=DEADLINE)
    assert [outcome for _, outcome, _, _ in attempts(db_conn, job_id)] == [
        "retrying",
        "classified",
    ]
    assert jobs_per_post(db_conn) == {post: 1}
    assert classifications_per_post(db_conn) == {post: 1}


def test_a_post_classified_after_it_was_chosen_gets_no_second_job(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    """The periodic enqueue (and `jobs enqueue --all`) chooses unclassified posts, then
    queues them in a later statement; a post whose job finishes in between is skipped."""
    [post, other] = insert_posts(db_conn, ["Stocks rally on jobs data", "Oil slides"])
    chosen = unclassified_ids(db_conn)
    assert chosen == [post, other]
    [job_id] = enqueue_posts(db_conn, [post])
    start_worker(database_url)  # the job runs, stores its result, finishes
    eventually(lambda: status_of(db_conn, job_id) == "succeeded", timeout=DEADLINE)

    report = enqueue(db_conn, chosen, unclassified_only=True)
    assert (list(report.queued), report.already_queued) == ([other], [post])
    assert jobs_per_post(db_conn) == {post: 1, other: 1}
    # Named on purpose, a classified post still gets its job (it ends `already_classified`).
    assert list(enqueue(db_conn, [post]).queued) == [post]


def test_import_enqueue_then_status(
    database_url: str,
    db_conn: psycopg.Connection[Any],
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    records = [
        post_record("1", "Stocks rally"),
        post_record("2", "Tariffs crush markets"),
        post_record("3", ""),  # stored, never queued
        post_record("4", "Fed holds rates"),
    ]
    file = write_jsonl(tmp_path / "posts.jsonl", records)

    first = volfefe(database_url, "import", str(file), "--enqueue")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "inserted 4, updated 0, unchanged 0, rejected 0",
        "queued 3 classification jobs",
    ]
    again = volfefe(database_url, "import", str(file), "--enqueue")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1] == "queued 0 classification jobs"
    posts = {
        row["external_id"]: row["id"]
        for row in db_conn.execute("SELECT id, external_id FROM contents").fetchall()
    }
    assert jobs_per_post(db_conn) == {posts[k]: 1 for k in ("1", "2", "4")}

    waiting = volfefe_json(database_url, "jobs", "status", "--json")
    assert waiting["queues"] == {"ml_classification": {"todo": 3}}
    assert isinstance(waiting["oldest_waiting_s"], float) and waiting["oldest_waiting_s"] >= 0
    assert waiting["failures"] == []

    # A job for a post that is gone fails: its error text shows in the status.
    db_conn.execute("DELETE FROM contents WHERE id = %(id)s", {"id": posts["4"]})
    start_worker(database_url, concurrency=2)
    eventually(lambda: count_by_status(db_conn) == {"succeeded": 2, "failed": 1}, DEADLINE)

    done = volfefe_json(database_url, "jobs", "status", "--json")
    assert done["queues"]["ml_classification"] == {"succeeded": 2, "failed": 1}
    assert done["oldest_waiting_s"] is None
    [failed_job] = [j["id"] for j in classify_jobs(db_conn) if j["status"] == "failed"]
    [failure] = done["failures"]
    assert {k: failure[k] for k in ("job_id", "content_id", "attempt", "outcome")} == {
        "job_id": failed_job,
        "content_id": posts["4"],
        "attempt": 1,
        "outcome": "failed",
    }
    assert failure["error"].startswith("ContentNotFound: ")
    assert str(posts["4"]) in failure["error"]
    text = volfefe(database_url, "jobs", "status")
    assert text.returncode == 0, text.stderr
    assert "ml_classification: failed 1, succeeded 2" in text.stdout
    assert "ContentNotFound" in text.stdout


def waiting_for_retry(db_conn: psycopg.Connection[Any], job_id: int) -> bool:
    """The job failed its first attempt and waits for its retry."""
    row = job(db_conn, job_id)
    return row["status"] == "todo" and row["attempts"] == 1 and bool(row["in_future"])
