"""Two job workers drain 500 jobs: every post classified exactly once, no job lost."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.helpers import eventually
from tests.jobs.conftest import StartWorker
from tests.jobs.helpers import (
    classifications_per_post,
    classify_jobs,
    count_by_status,
    enqueue_posts,
    insert_posts,
    registered_workers,
)

POSTS = 500
DEADLINE = 180.0
WORDS = ("stocks", "rally", "tariffs", "crush", "markets", "oil", "gold", "rates", "cut", "jobs")


def test_two_workers_drain_500_jobs(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    texts = [f"{WORDS[i % 10]} {WORDS[(i // 10) % 10]} {i}" for i in range(POSTS)]
    posts = insert_posts(db_conn, texts)
    workers = [start_worker(database_url, concurrency=5) for _ in range(2)]
    # Both must be up before the jobs arrive, or the first one could take them all.
    eventually(lambda: registered_workers(db_conn) == 2, timeout=DEADLINE)
    enqueue_posts(db_conn, posts)

    eventually(lambda: count_by_status(db_conn) == {"succeeded": POSTS}, timeout=DEADLINE)

    jobs = classify_jobs(db_conn)
    assert sorted(j["content_id"] for j in jobs) == posts  # one job per post
    assert len({j["worker_id"] for j in jobs}) == 2, "both workers took jobs"
    assert classifications_per_post(db_conn) == dict.fromkeys(posts, 1)
    outcomes = db_conn.execute(
        "SELECT outcome, count(*) AS n FROM volfefe_job_attempts GROUP BY outcome"
    ).fetchall()
    assert {row["outcome"]: row["n"] for row in outcomes} == {"classified": POSTS}
    for worker in workers:
        assert worker.terminate() == 0
