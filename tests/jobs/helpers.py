"""Helpers for the job tests: posts and jobs seen from SQL, and the CLI as a subprocess."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from tests.helpers import run_cli as run_cli  # one copy, re-exported
from tests.helpers import write_jsonl as write_jsonl
from volfefe.jobs.queue import TASK, enqueue

ENQUEUE_TASK = "volfefe.enqueue_unclassified"


def insert_posts(conn: psycopg.Connection[Any], texts: Sequence[str]) -> list[int]:
    """Insert one post per text (source `jobs-test`), returning their ids in order."""
    source = conn.execute(
        "INSERT INTO sources (name) VALUES ('jobs-test') "
        "ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id"
    ).fetchone()
    assert source is not None
    rows = conn.execute(
        """
        INSERT INTO contents (source_id, external_id, text)
        SELECT %(source)s, %(prefix)s || n, t
        FROM unnest(%(texts)s::text[]) WITH ORDINALITY AS u(t, n)
        ORDER BY n
        RETURNING id
        """,
        {"source": source["id"], "prefix": uuid.uuid4().hex[:8] + "-", "texts": list(texts)},
    ).fetchall()
    return sorted(row["id"] for row in rows)


def enqueue_posts(conn: psycopg.Connection[Any], content_ids: Sequence[int]) -> list[int]:
    """Queue one job per post through the product's enqueue; returns the job ids in order."""
    report = enqueue(conn, content_ids)
    assert not report.already_queued, report
    return [report.queued[i] for i in content_ids]


def job(conn: psycopg.Connection[Any], job_id: int) -> dict[str, Any]:
    """One job row: id, status, attempts, args, scheduled_at, worker_id, queue_name."""
    row = conn.execute(
        "SELECT id, status::text AS status, attempts, args, scheduled_at, worker_id, queue_name,"
        " scheduled_at > now() AS in_future"
        " FROM procrastinate_jobs WHERE id = %(id)s",
        {"id": job_id},
    ).fetchone()
    assert row is not None, f"job {job_id} does not exist"
    return dict(row)


def status_of(conn: psycopg.Connection[Any], job_id: int) -> str:
    """The procrastinate status of one job."""
    return str(job(conn, job_id)["status"])


def classify_jobs(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every classification job as (id, content_id, status, attempts), oldest first."""
    rows = conn.execute(
        "SELECT id, (args ->> 'content_id')::bigint AS content_id, status::text AS status,"
        " attempts, worker_id FROM procrastinate_jobs WHERE task_name = %(task)s ORDER BY id",
        {"task": TASK},
    ).fetchall()
    return [dict(row) for row in rows]


def jobs_per_post(conn: psycopg.Connection[Any]) -> dict[int, int]:
    """content_id -> number of classification jobs (in any state)."""
    counts: dict[int, int] = {}
    for row in classify_jobs(conn):
        counts[row["content_id"]] = counts.get(row["content_id"], 0) + 1
    return counts


def count_by_status(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Classification jobs by status."""
    rows = conn.execute(
        "SELECT status::text AS status, count(*) AS n FROM procrastinate_jobs"
        " WHERE task_name = %(task)s GROUP BY status",
        {"task": TASK},
    ).fetchall()
    return {row["status"]: row["n"] for row in rows}


def attempts(conn: psycopg.Connection[Any], job_id: int) -> list[tuple[Any, ...]]:
    """The attempt records of a job as (attempt, outcome, error_type, message), in order."""
    rows = conn.execute(
        "SELECT attempt, outcome, error_type, message FROM volfefe_job_attempts"
        " WHERE job_id = %(id)s ORDER BY id",
        {"id": job_id},
    ).fetchall()
    return [(r["attempt"], r["outcome"], r["error_type"], r["message"]) for r in rows]


def classifications_per_post(conn: psycopg.Connection[Any]) -> dict[int, int]:
    """content_id -> number of stored classifications (the unique index keeps it at most 1)."""
    rows = conn.execute(
        "SELECT content_id, count(*) AS n FROM classifications GROUP BY content_id"
    ).fetchall()
    return {row["content_id"]: row["n"] for row in rows}


def classified_flags(conn: psycopg.Connection[Any], content_ids: Sequence[int]) -> list[bool]:
    """`contents.classified` of these posts, in order."""
    rows = conn.execute(
        "SELECT id, classified FROM contents WHERE id = ANY(%(ids)s)", {"ids": list(content_ids)}
    ).fetchall()
    flags = {row["id"]: row["classified"] for row in rows}
    return [flags[i] for i in content_ids]


def registered_workers(conn: psycopg.Connection[Any]) -> int:
    """procrastinate workers with a row (registered and not stopped)."""
    row = conn.execute("SELECT count(*) AS n FROM procrastinate_workers").fetchone()
    return int(row["n"]) if row else 0


def volfefe(
    database_url: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python -m volfefe ARGS` against `database_url`, as a user would."""
    return run_cli(*args, env={"DATABASE_URL": database_url, **(env or {})}, timeout=timeout)


def volfefe_json(database_url: str, *args: str) -> Any:
    """Run a `--json` command that must succeed and decode its output."""
    proc = volfefe(database_url, *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found
