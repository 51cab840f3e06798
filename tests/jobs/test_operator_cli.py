"""What operators see: `jobs worker`'s log without -v, and procrastinate's own command line
(`procrastinate --app=volfefe.jobs.procrastinate_app.app ...`) on volfefe's tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import psycopg.conninfo

from tests.helpers import eventually
from tests.jobs.conftest import FAST_JOBS
from tests.jobs.helpers import (
    classify_jobs,
    enqueue_posts,
    insert_posts,
    job,
    status_of,
    write_jsonl,
)
from tests.jobs.helpers import volfefe as volfefe_cli
from volfefe.store.connect import describe_target

DEADLINE = 120.0
APP = "volfefe.jobs.procrastinate_app.app"
ATTEMPTS = """
SELECT attempt, outcome, error_type FROM volfefe_job_attempts
WHERE job_id = %(job)s ORDER BY attempt
"""


def job_env(url: str, model: Path) -> dict[str, str]:
    return {**os.environ, **FAST_JOBS, "DATABASE_URL": url, "VOLFEFE_MODEL": str(model)}


def attempts(conn: psycopg.Connection[Any], job_id: int) -> list[tuple[int, str, str | None]]:
    rows = conn.execute(ATTEMPTS, {"job": job_id}).fetchall()
    return [(row["attempt"], row["outcome"], row["error_type"]) for row in rows]


def test_worker_logs_one_line_per_outcome_and_no_traceback_for_expected_failures(
    database_url: str, db_conn: psycopg.Connection[Any], tiny_model: Path, tmp_path: Path
) -> None:
    [fresh] = insert_posts(db_conn, ["Markets rally"])
    missing = fresh + 1000
    fresh_job, missing_job = enqueue_posts(db_conn, [fresh, missing])
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "volfefe", "jobs", "worker", "--concurrency", "1"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=job_env(database_url, tiny_model),
        )
    try:
        done = (fresh_job, missing_job)
        eventually(
            lambda: all(status_of(db_conn, j) in ("succeeded", "failed") for j in done),
            timeout=DEADLINE,
        )
        classified = f"job {fresh_job} post {fresh} attempt 1: classified"
        failed = (
            f"job {missing_job} post {missing} attempt 1: failed: "
            f"ContentNotFound: content {missing} not found"
        )
        eventually(lambda: failed in log_path.read_text(), timeout=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    lines = log_path.read_text().splitlines()
    [fresh_line] = [line for line in lines if f"job {fresh_job} " in line]
    [missing_line] = [line for line in lines if f"job {missing_job} " in line]  # one per outcome:
    # procrastinate's own record of the failure is not repeated
    assert fresh_line.endswith(classified) and missing_line.endswith(failed)
    assert "Traceback" not in log_path.read_text()


def test_procrastinate_cli_runs_volfefe_jobs_with_recorded_attempts(
    database_url: str, db_conn: psycopg.Connection[Any], tiny_model: Path
) -> None:
    env = job_env(database_url, tiny_model)

    def procrastinate(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "procrastinate", f"--app={APP}", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )

    health = procrastinate("healthchecks")
    assert health.returncode == 0, health.stderr
    assert "DB connection: OK" in health.stdout and "procrastinate_jobs table: OK" in health.stdout

    [fresh] = insert_posts(db_conn, ["Bonds steady"])
    missing = fresh + 1000
    fresh_job, missing_job = enqueue_posts(db_conn, [fresh, missing])
    worker = procrastinate("worker", "--one-shot", "--queues", "ml_classification")
    assert worker.returncode == 0, worker.stderr
    assert (status_of(db_conn, fresh_job), status_of(db_conn, missing_job)) == (
        "succeeded",
        "failed",
    )
    assert attempts(db_conn, fresh_job) == [(1, "classified", None)]
    assert attempts(db_conn, missing_job) == [(1, "failed", "ContentNotFound")]
    assert "KeyError" not in worker.stderr and "Traceback" not in worker.stderr
    stored = db_conn.execute(
        "SELECT count(*) AS n FROM classifications WHERE content_id = %(id)s", {"id": fresh}
    ).fetchone()
    assert stored is not None and stored["n"] == 1

    def volfefe(*args: str) -> Any:
        proc = subprocess.run(
            [sys.executable, "-m", "volfefe", *args, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    # The attempts procrastinate's worker recorded are the ones `jobs status` shows.
    assert volfefe("jobs", "status", "--failures", "0")["failures"] == []
    [failure] = volfefe("jobs", "status", "--failures", "5")["failures"]
    assert (failure["job_id"], failure["content_id"]) == (missing_job, missing)
    assert failure["error"] == f"ContentNotFound: content {missing} not found"
    [later] = insert_posts(db_conn, ["Oil slips"])
    assert volfefe("jobs", "enqueue", "--ids", str(later), "--schedule-in", "3600")["queued"] == 1
    [scheduled] = [j for j in classify_jobs(db_conn) if j["content_id"] == later]
    assert job(db_conn, scheduled["id"])["in_future"] is True

    shell = procrastinate("shell", stdin="list_jobs\nexit\n")
    assert shell.returncode == 0, shell.stderr
    assert f"#{fresh_job} volfefe.classify_post on ml_classification - [succeeded]" in shell.stdout
    assert f"#{missing_job} volfefe.classify_post on ml_classification - [failed]" in shell.stdout


def test_worker_says_at_start_what_it_listens_to(
    database_url: str, tiny_model: Path, tmp_path: Path
) -> None:
    """One start-up line on stderr: the database (never its password), the concurrency,
    the backend and model, the queues."""
    password = "pw-that-must-not-show"
    url = psycopg.conninfo.make_conninfo(database_url, password=password)
    env = {**job_env(url, tiny_model), "VOLFEFE_BACKEND": "torch"}
    err_path, out_path = tmp_path / "worker.err", tmp_path / "worker.out"
    with err_path.open("wb") as err, out_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "volfefe", "jobs", "worker", "--concurrency", "3"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
        )
    try:
        eventually(lambda: "\n" in err_path.read_text(), timeout=DEADLINE)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    first = err_path.read_text().splitlines()[0]
    assert first == (
        f"jobs worker: {describe_target(database_url)}, password ***; concurrency 3; "
        f"backend torch, model {tiny_model}; queues ml_classification, volfefe_maintenance"
    )
    assert password not in err_path.read_text()
    assert out_path.read_text() == ""


def test_retry_failed_says_when_nothing_failed(database_url: str) -> None:
    none_failed = volfefe_cli(database_url, "jobs", "retry", "--failed")
    assert (none_failed.returncode, none_failed.stdout) == (0, "no failed jobs to retry\n")


def test_counts_of_one_are_singular(
    database_url: str, db_conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    one = write_jsonl(
        tmp_path / "one.jsonl", [{"source": "s", "external_id": "1", "text": "Stocks rally"}]
    )
    imported = volfefe_cli(database_url, "import", str(one), "--enqueue")
    assert imported.stdout.splitlines()[1] == "queued 1 classification job"
    [done] = classify_jobs(db_conn)
    db_conn.execute(
        "UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %(id)s", {"id": done["id"]}
    )
    pruned = volfefe_cli(database_url, "jobs", "prune", "--older-than", "0s")
    assert (pruned.returncode, pruned.stdout) == (0, "deleted 1 finished job\n")
