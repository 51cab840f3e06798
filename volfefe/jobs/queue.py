"""The classification job queue, seen from SQL: enqueue without duplicates, status, retry, prune.

Jobs are procrastinate jobs (task `volfefe.classify_post`, queue `ml_classification`, args
`{"content_id": N}`). procrastinate's `queueing_lock` is not used: it only covers waiting
jobs and makes a retry fail when a duplicate was queued meanwhile. Instead the SQL function
`volfefe_enqueue_classify` (migration 0005) takes a transaction-level advisory lock and skips
posts that already have a waiting or running job, so it can run inside the caller's
transaction (an import inserts posts and their jobs together). The same function runs in the
triggers on `contents`, so a post written by any application is queued the same way and never
twice. The unique constraint on classifications stays the last guard.

The stalled-job rescue (`rescue`) runs one at a time (a transaction-level advisory lock; a
second one finds it taken and does nothing) and re-queues a job only while it is still the
run it saw stalled (`doing`, same attempts, same worker, checked under the row lock), so a
rescue that raced another one, or saw the job before a live worker took it again, changes
nothing: a job never runs twice at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from volfefe.errors import WorkerError
from volfefe.store.quarantine import count_quarantined, quarantined

QUEUE = "ml_classification"
TASK = "volfefe.classify_post"
ENQUEUE_LOCK = 0x766F6C656E71  # "volenq": serialises enqueues so the duplicate check holds
ENQUEUE_CHUNK = 5000
RESCUE_LOCK = 0x766F6C726573  # "volres": one stalled-job rescue at a time

LOCK = "SELECT pg_advisory_xact_lock(%(key)s)"
ACTIVE = """
SELECT DISTINCT (args ->> 'content_id')::bigint AS content_id
FROM procrastinate_jobs
WHERE status IN ('todo', 'doing') AND task_name = %(task)s
  AND (args ->> 'content_id')::bigint = ANY(%(ids)s)
"""
# The waiting or running job of each post (the enqueue lock keeps it to one; min() if not).
ACTIVE_JOBS = """
SELECT (args ->> 'content_id')::bigint AS content_id, min(id) AS job_id
FROM procrastinate_jobs
WHERE status IN ('todo', 'doing') AND task_name = %(task)s
  AND (args ->> 'content_id')::bigint = ANY(%(ids)s)
GROUP BY 1
"""
# The one enqueue (migrations 0005, 0006): lock, skip posts with an active job (and, when
# asked, posts classified already, checked in the same statement), defer the rest.
ENQUEUE = """
SELECT content_id, job_id
FROM volfefe_enqueue_classify(
    %(ids)s::bigint[], %(scheduled_at)s::timestamptz, %(unclassified_only)s::boolean
)
"""
UNCLASSIFIED_IDS = """
SELECT id FROM contents
WHERE NOT classified AND has_text AND quarantined_at IS NULL
ORDER BY id LIMIT %(limit)s
"""
COUNTS = """
SELECT queue_name, status::text AS status, count(*) AS n
FROM procrastinate_jobs GROUP BY queue_name, status ORDER BY queue_name, status
"""
OLDEST_WAITING = """
SELECT extract(epoch FROM now() - min(coalesce(j.scheduled_at, e.at))) AS age
FROM procrastinate_jobs j
JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'deferred'
WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
"""
RECENT_FAILURES = """
SELECT a.job_id, a.content_id, a.attempt, a.outcome, a.error_type, a.message, a.at
FROM volfefe_job_attempts a
WHERE a.outcome IN ('failed', 'retrying', 'rescued', 'quarantined', 'interrupted')
ORDER BY a.at DESC, a.id DESC LIMIT %(limit)s
"""
RECORD_ATTEMPT = """
INSERT INTO volfefe_job_attempts (job_id, content_id, attempt, outcome, error_type, message)
VALUES (%(job_id)s, %(content_id)s, %(attempt)s, %(outcome)s, %(error_type)s, %(message)s)
"""
JOB = "SELECT id, status::text AS status, args, attempts FROM procrastinate_jobs WHERE id = %(id)s"
FAILED_JOBS = """
SELECT id, args FROM procrastinate_jobs
WHERE status = 'failed' AND queue_name = %(queue)s ORDER BY id
"""
# Not procrastinate_retry_job_v2: it counts one more attempt, and the failed one was counted
# when the job finished. A manual retry is one more attempt, numbered after the last.
RETRY = """
UPDATE procrastinate_jobs SET status = 'todo', scheduled_at = now(), worker_id = NULL
WHERE id = %(id)s AND status = 'failed'
"""
TRY_LOCK = "SELECT pg_try_advisory_xact_lock(%(key)s) AS got"
# procrastinate's `select_stalled_jobs_by_heartbeat`, for our queue: running jobs whose worker
# has not beaten for `stalled_after` (or has no row any more).
STALLED = """
SELECT j.id, j.args, j.attempts, j.worker_id
FROM procrastinate_jobs j
LEFT JOIN procrastinate_workers w ON w.id = j.worker_id
WHERE j.status = 'doing' AND j.queue_name = %(queue)s
  AND (j.worker_id IS NULL OR w.last_heartbeat < now() - %(stalled_after)s)
ORDER BY j.id
"""
# The run seen stalled, if it is still that run: locked until the rescue's transaction ends.
# procrastinate's retry_job_v2 would re-queue any `doing` job, a live worker's included.
STILL_STALLED = """
SELECT id FROM procrastinate_jobs
WHERE id = %(id)s AND status = 'doing' AND attempts = %(attempts)s
  AND worker_id IS NOT DISTINCT FROM %(worker_id)s
FOR UPDATE
"""
REQUEUE = "SELECT procrastinate_retry_job_v2(%(id)s, now(), NULL, NULL, NULL)"
FAIL = "SELECT procrastinate_finish_job_v1(%(id)s, 'failed', false)"
PRUNE_ATTEMPTS = """
DELETE FROM volfefe_job_attempts a
WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.id = a.job_id)
"""
PRUNE_JOBS = """
DELETE FROM procrastinate_jobs
WHERE id IN (
    SELECT j.id FROM procrastinate_jobs j
    JOIN LATERAL (SELECT max(at) AS last_at FROM procrastinate_events e WHERE e.job_id = j.id)
         ev ON true
    WHERE j.status IN ('succeeded', 'failed', 'cancelled', 'aborted')
      AND ev.last_at < now() - %(age)s
)
"""


@dataclass
class EnqueueReport:
    """Which posts got a new job (with its id), and which were skipped: they already had one
    waiting or running (or, with `unclassified_only`, were classified already). `active` has
    the job of each skipped post that has one waiting or running, whoever queued it (say, the
    auto-enqueue trigger earlier in the same transaction)."""

    queued: dict[int, int] = field(default_factory=dict)
    already_queued: list[int] = field(default_factory=list)
    active: dict[int, int] = field(default_factory=dict)


def enqueue(
    conn: psycopg.Connection[Any],
    content_ids: Sequence[int],
    *,
    schedule_in: float | None = None,
    unclassified_only: bool = False,
) -> EnqueueReport:
    """Queue one classification job per post, skipping posts with a waiting or running job.

    `unclassified_only` also skips posts that are classified (or blank or quarantined) by the
    time of the statement that queues: for a caller that chose its ids earlier, as the periodic
    enqueue does, so a post whose job finished in between gets no second job. Without it, a
    classified post named on purpose gets a job (which ends as `already_classified`).

    Runs in the caller's transaction when there is one (a savepoint otherwise commits at
    once). 10,000 ids take one statement per 5,000.
    """
    report = EnqueueReport()
    scheduled_at = datetime.now(UTC) + timedelta(seconds=schedule_in) if schedule_in else None
    ids = list(dict.fromkeys(content_ids))
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        for start in range(0, len(ids), ENQUEUE_CHUNK):
            chunk = ids[start : start + ENQUEUE_CHUNK]
            params = {
                "ids": chunk,
                "scheduled_at": scheduled_at,
                "unclassified_only": unclassified_only,
            }
            queued: dict[int, int] = dict(cur.execute(ENQUEUE, params).fetchall())
            report.queued.update((i, queued[i]) for i in chunk if i in queued)
            report.already_queued += [i for i in chunk if i not in queued]
        if report.already_queued:
            cur.execute(ACTIVE_JOBS, {"task": TASK, "ids": report.already_queued})
            report.active = dict(cur.fetchall())
    return report


def unclassified_ids(conn: psycopg.Connection[Any], limit: int | None = None) -> list[int]:
    """Ids of posts with text, no classification and no quarantine, oldest first."""
    rows = conn.execute(UNCLASSIFIED_IDS, {"limit": limit}).fetchall()  # LIMIT NULL = all
    return [_first(row) for row in rows]


def record_attempt(
    conn: psycopg.Connection[Any],
    job_id: int,
    content_id: int | None,
    attempt: int,
    outcome: str,
    error: BaseException | None = None,
) -> None:
    """Keep what one attempt of a job did (procrastinate stores no error text)."""
    conn.execute(
        RECORD_ATTEMPT,
        {
            "job_id": job_id,
            "content_id": content_id,
            "attempt": attempt,
            "outcome": outcome,
            "error_type": type(error).__name__ if error else None,
            "message": str(error)[:2000] if error else None,
        },
    )


def status(conn: psycopg.Connection[Any], failures: int = 10) -> dict[str, Any]:
    """Counts by queue and state, the oldest waiting job's age, recent failures, and the
    quarantined posts (count and the most recent `failures` of them)."""
    queues: dict[str, dict[str, int]] = {QUEUE: {}}
    for row in conn.execute(COUNTS):
        queues.setdefault(_get(row, "queue_name", 0), {})[_get(row, "status", 1)] = int(
            _get(row, "n", 2)
        )
    age_row = conn.execute(OLDEST_WAITING).fetchone()
    age = _first(age_row) if age_row else None
    recent = []
    for row in conn.execute(RECENT_FAILURES, {"limit": failures}):
        values = row.values() if isinstance(row, dict) else row
        job_id, content_id, attempt, outcome, error_type, message, at = values
        recent.append(
            {
                "job_id": job_id,
                "content_id": content_id,
                "attempt": attempt,
                "outcome": outcome,
                "error": f"{error_type}: {message}",
                "at": at.isoformat(),
            }
        )
    return {
        "queues": queues,
        "oldest_waiting_s": float(age) if age is not None else None,
        "failures": recent,
        "quarantined": count_quarantined(conn),
        "quarantined_posts": [post.to_json() for post in quarantined(conn, limit=failures)],
    }


def retry(conn: psycopg.Connection[Any], job_ids: Sequence[int]) -> dict[int, str]:
    """Queue failed jobs again; returns an outcome per job id (`retried` or why not)."""
    outcomes: dict[int, str] = {}
    for job_id in job_ids:
        with conn.transaction():
            conn.execute(LOCK, {"key": ENQUEUE_LOCK})
            row = conn.execute(JOB, {"id": job_id}).fetchone()
            if row is None:
                outcomes[job_id] = "not found"
                continue
            state, args = _get(row, "status", 1), _get(row, "args", 2)
            if state != "failed":
                outcomes[job_id] = f"not failed (status {state})"
                continue
            active = conn.execute(ACTIVE, {"task": TASK, "ids": [args.get("content_id")]})
            if active.fetchone():
                outcomes[job_id] = "already queued"
                continue
            conn.execute(RETRY, {"id": job_id})
            outcomes[job_id] = "retried"
    return outcomes


@dataclass(frozen=True)
class Rescued:
    """A stalled run the rescue ended: `rescued` (queued again) or `failed` (the attempt cap)."""

    job_id: int
    content_id: int | None
    attempt: int  # the attempt that stalled
    outcome: str


def rescue(
    conn: psycopg.Connection[Any], *, stalled_after: float, max_attempts: int
) -> list[Rescued] | None:
    """Queue again the running jobs of workers silent for `stalled_after` seconds (fail them
    at the attempt cap), each with its attempt record, in one transaction.

    Returns None when another rescue holds the lock (it does the work), else what it ended.
    A job that changed since it was seen stalled (re-queued by another rescue, taken by a live
    worker) is left alone.
    """
    ended: list[Rescued] = []
    with conn.transaction():
        if not _first(conn.execute(TRY_LOCK, {"key": RESCUE_LOCK}).fetchone()):
            return None
        params = {"queue": QUEUE, "stalled_after": timedelta(seconds=stalled_after)}
        for row in conn.execute(STALLED, params).fetchall():
            job_id, args = _get(row, "id", 0), _get(row, "args", 1)
            attempts, worker_id = _get(row, "attempts", 2), _get(row, "worker_id", 3)
            seen = {"id": job_id, "attempts": attempts, "worker_id": worker_id}
            if conn.execute(STILL_STALLED, seen).fetchone() is None:
                continue
            raw_id = args.get("content_id")
            content_id = int(raw_id) if isinstance(raw_id, int | str) else None
            attempt = attempts + 1
            died = WorkerError(f"the job worker running attempt {attempt} stopped beating")
            outcome = "failed" if attempt >= max_attempts else "rescued"
            conn.execute(FAIL if outcome == "failed" else REQUEUE, {"id": job_id})
            record_attempt(conn, job_id, content_id, attempt, outcome, died)
            ended.append(Rescued(job_id, content_id, attempt, outcome))
    return ended


def failed_job_ids(conn: psycopg.Connection[Any]) -> list[int]:
    """Ids of failed classification jobs, oldest first."""
    return [_first(row) for row in conn.execute(FAILED_JOBS, {"queue": QUEUE})]


def prune(conn: psycopg.Connection[Any], older_than: timedelta) -> int:
    """Delete finished jobs (and their attempt records) older than `older_than`."""
    with conn.transaction():
        deleted = conn.execute(PRUNE_JOBS, {"age": older_than}).rowcount
        conn.execute(PRUNE_ATTEMPTS)
    return deleted


def _first(row: Any) -> Any:
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def _get(row: Any, key: str, index: int) -> Any:
    return row[key] if isinstance(row, dict) else row[index]
