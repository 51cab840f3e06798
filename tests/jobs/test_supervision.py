"""The job worker under faults, as its service manager sees it: a bad cron, the attempt cap,
SIGTERM past the grace, two signals, and poison that breaks the pool (the zombie worker).

Every test runs real `python -m volfefe jobs worker` processes on a real database.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import eventually
from tests.jobs.conftest import FAST_JOBS, WORKER_ARGV, StartWorker
from tests.jobs.helpers import (
    attempts,
    classifications_per_post,
    enqueue_posts,
    insert_posts,
    job,
    status_of,
)
from volfefe.store.connect import connect

DEADLINE = 180.0


def test_a_bad_cron_is_a_config_error_at_start(database_url: str, tiny_model: Path) -> None:
    env = {
        **os.environ,
        **FAST_JOBS,
        "DATABASE_URL": database_url,
        "VOLFEFE_MODEL": str(tiny_model),
        "VOLFEFE_JOBS_ENQUEUE_CRON": "61 * * * *",
    }
    started = time.monotonic()
    proc = subprocess.run(
        [*WORKER_ARGV], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert "ConfigError: VOLFEFE_JOBS_ENQUEUE_CRON is not a valid cron expression" in proc.stderr
    assert "61 * * * *" in proc.stderr
    assert time.monotonic() - started < 30, "no restart loop"


@pytest.mark.parametrize("max_attempts", [1, 2, 3])
def test_max_attempts_means_exactly_n_attempts(
    database_url: str,
    db_conn: psycopg.Connection[Any],
    start_worker: StartWorker,
    max_attempts: int,
) -> None:
    [post] = insert_posts(db_conn, ["Stocks rally after the rate cut"])
    [job_id] = enqueue_posts(db_conn, [post])
    # A transient failure on every attempt: the post's row stays locked, so storing the
    # result runs into the 1 s statement timeout (QueryCanceled, a psycopg OperationalError).
    with connect(database_url, autocommit=False) as locker:
        locker.execute("SELECT id FROM contents WHERE id = %(id)s FOR UPDATE", {"id": post})
        start_worker(
            database_url,
            VOLFEFE_JOBS_MAX_ATTEMPTS=str(max_attempts),
            VOLFEFE_DB_STATEMENT_TIMEOUT="1",
        )
        eventually(lambda: status_of(db_conn, job_id) == "failed", timeout=DEADLINE)
        locker.rollback()

    records = attempts(db_conn, job_id)
    expected = ["retrying"] * (max_attempts - 1) + ["failed"]
    assert [(a, outcome) for a, outcome, _, _ in records] == list(
        zip(range(1, max_attempts + 1), expected, strict=True)
    )
    assert {kind for _, _, kind, _ in records} == {"QueryCanceled"}
    assert job(db_conn, job_id)["attempts"] == max_attempts
    assert classifications_per_post(db_conn) == {}


def test_sigterm_past_the_grace_fails_the_call_and_the_job_comes_back(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    [post] = insert_posts(db_conn, ["Oil slides on weak demand"])
    [job_id] = enqueue_posts(db_conn, [post])
    stuck = start_worker(
        database_url,
        fault="delay=60",
        once=False,
        VOLFEFE_CALL_TIMEOUT="120",
        VOLFEFE_SHUTDOWN_GRACE="2",
        VOLFEFE_JOBS_MAX_ATTEMPTS="1",  # an interrupted attempt comes back even at the cap
    )
    eventually(lambda: status_of(db_conn, job_id) == "doing", timeout=DEADLINE)

    started = time.monotonic()
    assert stuck.terminate(timeout=30) == 0
    assert time.monotonic() - started < 20, "the sync task did not outlive the grace"
    assert status_of(db_conn, job_id) == "todo"
    [(attempt, outcome, kind, _)] = attempts(db_conn, job_id)
    assert (attempt, outcome, kind) == (1, "interrupted", "PoolClosed")

    start_worker(database_url)
    eventually(lambda: status_of(db_conn, job_id) == "succeeded", timeout=DEADLINE)
    assert classifications_per_post(db_conn) == {post: 1}


def test_two_signals_exit_at_once_and_the_job_is_rescued(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    [post] = insert_posts(db_conn, ["Gold shines as yields fall"])
    [job_id] = enqueue_posts(db_conn, [post])
    doomed = start_worker(
        database_url,
        fault="delay=60",
        once=False,
        VOLFEFE_CALL_TIMEOUT="120",
        VOLFEFE_SHUTDOWN_GRACE="60",
    )
    eventually(lambda: status_of(db_conn, job_id) == "doing", timeout=DEADLINE)

    doomed.proc.send_signal(signal.SIGTERM)
    eventually(lambda: "stop" in doomed.log().lower() or not doomed.running(), timeout=10)
    started = time.monotonic()
    doomed.proc.send_signal(signal.SIGTERM)
    code = doomed.proc.wait(timeout=30)
    assert code != 0 and time.monotonic() - started < 10, (code, doomed.log())

    start_worker(database_url)
    eventually(lambda: status_of(db_conn, job_id) == "succeeded", timeout=DEADLINE)
    assert classifications_per_post(db_conn) == {post: 1}
    outcomes = [outcome for _, outcome, _, _ in attempts(db_conn, job_id)]
    assert outcomes[-1] == "classified" and outcomes.count("classified") == 1


def test_a_pool_being_rebuilt_costs_no_job_an_attempt(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    """One child fails its second call, whatever it holds, and a budget of zero restarts
    breaks the pool: the jobs in flight meet PoolBroken, wait for the rebuild and are
    classified in their first attempt (a rebuild is the worker's state, not the post's)."""
    ids = insert_posts(db_conn, [f"Post {n}: markets move" for n in range(12)])
    job_ids = enqueue_posts(db_conn, ids)
    worker = start_worker(database_url, concurrency=4, fault="crash@2", VOLFEFE_MAX_RESTARTS="0")

    eventually(
        lambda: all(status_of(db_conn, j) in ("succeeded", "failed") for j in job_ids),
        timeout=DEADLINE,
    )
    assert classifications_per_post(db_conn) == dict.fromkeys(ids, 1)
    for job_id in job_ids:
        assert status_of(db_conn, job_id) == "succeeded"
        assert [a[:2] for a in attempts(db_conn, job_id)] == [(1, "classified")]
    assert "rebuilding the worker pool" in worker.log()
    assert worker.running()


def test_a_model_broken_mid_run_stops_the_worker_with_config_error_and_loses_no_job(
    database_url: str,
    db_conn: psycopg.Connection[Any],
    start_worker: StartWorker,
    tiny_model: Path,
    tmp_path: Path,
) -> None:
    """A deploy breaks the model folder under a running worker: its children can no longer
    start. The worker must not stay up failing every job: it exits 2 (ConfigError), the job
    in flight is kept for later, and a worker started on a good model classifies it."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    first, second = insert_posts(db_conn, ["Stocks rally", "Markets slide on tariffs"])
    [first_job] = enqueue_posts(db_conn, [first])
    # The child's second request kills it; its replacement finds the broken model (torch
    # reads the folder itself; an export would have been made at the start).
    worker = start_worker(
        database_url, fault="crash@2", VOLFEFE_MODEL=str(model), VOLFEFE_BACKEND="torch"
    )
    eventually(lambda: status_of(db_conn, first_job) == "succeeded", timeout=DEADLINE)
    good_config = (model / "config.json").read_text()
    (model / "config.json").write_text("{this is not json")
    [second_job] = enqueue_posts(db_conn, [second])

    assert worker.proc.wait(timeout=DEADLINE) == 2, worker.log()
    assert "ConfigError: " in worker.log()
    records = attempts(db_conn, second_job)  # once, or again if fetched before the stop
    assert records and {(outcome, kind) for _, outcome, kind, _ in records} == {
        ("retrying", "ConfigError")
    }
    assert status_of(db_conn, second_job) == "todo"

    (model / "config.json").write_text(good_config)
    start_worker(database_url, VOLFEFE_MODEL=str(model), VOLFEFE_BACKEND="torch")
    eventually(lambda: status_of(db_conn, second_job) == "succeeded", timeout=DEADLINE)
    assert classifications_per_post(db_conn) == {first: 1, second: 1}
