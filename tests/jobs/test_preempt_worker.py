"""A real `volfefe jobs worker` with VOLFEFE_PREEMPT=layers: its child runs the layered
export and preempts, and every post, short and long, arriving together, is classified once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from tests.helpers import eventually
from tests.jobs.conftest import StartWorker
from tests.jobs.helpers import classifications_per_post, enqueue_posts, insert_posts, status_of

LONG = "the fed raises rates again and markets fall " * 60  # over the model's 512 tokens


def child_argvs(pid: int) -> list[list[bytes]]:
    """The command lines of a process's children (started by any of its threads)."""
    children = [
        c for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()
    ]
    return [Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0") for child in children]


def test_a_preempting_worker_classifies_short_and_long_posts_once(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    texts = [LONG, "stocks rally", LONG, "rates cut", "oil slides", LONG, "jobs beat"]
    ids = insert_posts(db_conn, texts)
    job_ids = enqueue_posts(db_conn, ids)
    worker = start_worker(
        database_url, concurrency=8, VOLFEFE_BACKEND="onnx", VOLFEFE_PREEMPT="layers"
    )
    eventually(lambda: all(status_of(db_conn, j) == "succeeded" for j in job_ids), timeout=180)
    assert classifications_per_post(db_conn) == dict.fromkeys(ids, 1)
    versions = db_conn.execute(
        "SELECT DISTINCT model_version FROM classifications WHERE content_id = ANY(%(ids)s)",
        {"ids": ids},
    ).fetchall()
    assert [row["model_version"].endswith("+onnx") for row in versions] == [True]
    [argv] = [a for a in child_argvs(worker.pid) if b"--serve" in a]
    assert argv[argv.index(b"--preempt") + 1] == b"layers"
