"""A job worker stopped under a running job: SIGKILL (the job is rescued) and SIGTERM (it ends)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.helpers import alive, eventually
from tests.jobs.conftest import StartWorker
from tests.jobs.helpers import (
    attempts,
    children_of,
    classifications_per_post,
    enqueue_posts,
    insert_posts,
    job,
    status_of,
)

DEADLINE = 120.0


def test_job_of_a_killed_worker_is_rescued_by_another(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    [post] = insert_posts(db_conn, ["Stocks rally into the close"])
    [job_id] = enqueue_posts(db_conn, [post])
    # 30 s per reply: the job cannot finish before the worker is killed.
    doomed = start_worker(database_url, fault="delay=30", once=False, VOLFEFE_CALL_TIMEOUT="120")
    eventually(lambda: status_of(db_conn, job_id) == "doing", timeout=DEADLINE)
    children = [pid for pid in children_of(doomed.pid) if alive(pid)]
    assert children, "the worker runs its classifier child"

    doomed.proc.send_signal(signal.SIGKILL)
    assert doomed.proc.wait(timeout=30) == -signal.SIGKILL
    eventually(lambda: not any(alive(pid) for pid in children), timeout=30)
    assert status_of(db_conn, job_id) == "doing"  # nobody told the database
    start_worker(database_url)

    eventually(lambda: status_of(db_conn, job_id) == "succeeded", timeout=DEADLINE)
    rescued, classified = attempts(db_conn, job_id)
    assert rescued[:3] == (1, "rescued", "WorkerError")
    assert "stopped beating" in rescued[3]
    assert classified == (2, "classified", None, None)
    assert classifications_per_post(db_conn) == {post: 1}


def test_sigterm_lets_the_running_job_finish_and_starts_no_other(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    running_post, waiting_post = insert_posts(db_conn, ["Oil slides", "Gold shines"])
    running_job, waiting_job = enqueue_posts(db_conn, [running_post, waiting_post])
    worker = start_worker(database_url, fault="delay=3", once=False, VOLFEFE_SHUTDOWN_GRACE="30")
    eventually(lambda: status_of(db_conn, running_job) == "doing", timeout=DEADLINE)

    assert worker.terminate() == 0
    assert status_of(db_conn, running_job) == "succeeded"
    assert attempts(db_conn, running_job) == [(1, "classified", None, None)]
    waiting = job(db_conn, waiting_job)
    assert (waiting["status"], waiting["attempts"]) == ("todo", 0)
    assert attempts(db_conn, waiting_job) == []
    assert classifications_per_post(db_conn) == {running_post: 1}
    workers = db_conn.execute("SELECT count(*) AS n FROM procrastinate_workers").fetchone()
    assert workers == {"n": 0}, "a stopped worker unregisters"


def test_sigterm_while_the_child_boots_stops_at_once(
    database_url: str, start_worker: StartWorker
) -> None:
    """A close never waits for a booting child: not its boot_timeout, not the grace either
    (nothing is queued or running, so there is nothing to let finish)."""
    worker = start_worker(
        database_url,
        fault="boot-hang",
        once=False,
        VOLFEFE_BOOT_TIMEOUT="120",
        VOLFEFE_SHUTDOWN_GRACE="60",
    )

    def booting_child() -> list[int]:
        return [pid for pid in children_of(worker.pid) if b"volfefe.child" in cmdline(pid)]

    eventually(lambda: booting_child() != [], timeout=DEADLINE)
    [child] = booting_child()

    started = time.monotonic()
    assert worker.terminate() == 0, worker.log()
    assert time.monotonic() - started < 30, "waited for the grace or the boot"
    eventually(lambda: not alive(child), timeout=10)


def cmdline(pid: int) -> bytes:
    """The process's command line ('' once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""
