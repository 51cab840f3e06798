"""Classification jobs as the API and the dashboard show them: a page by state with the last
error of each job, and cancelling a waiting job.

Retrying is `volfefe.jobs.queue.retry` (the same rules as `jobs retry`). A job's `updated_at` is
its last change; procrastinate's `scheduled` event carries the time the job is scheduled
for, which can lie ahead, so it is `scheduled_at`'s alone.
"""

from __future__ import annotations

from typing import Any

import psycopg

from volfefe.jobs.queue import QUEUE, TASK

STATES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborting", "aborted")
JOBS = """
SELECT j.id, j.status::text AS status, (j.args ->> 'content_id')::bigint AS content_id,
       j.attempts, j.scheduled_at,
       (SELECT min(e.at) FROM procrastinate_events e
        WHERE e.job_id = j.id AND e.type = 'deferred') AS queued_at,
       (SELECT max(e.at) FROM procrastinate_events e
        WHERE e.job_id = j.id AND e.type <> 'scheduled') AS updated_at,
       a.outcome AS last_outcome, a.error_type, a.message
FROM procrastinate_jobs AS j
LEFT JOIN LATERAL (
    SELECT outcome, error_type, message FROM volfefe_job_attempts
    WHERE job_id = j.id ORDER BY at DESC, id DESC LIMIT 1
) AS a ON true
WHERE j.queue_name = %(queue)s AND j.task_name = %(task)s
  AND (%(state)s::text IS NULL OR j.status::text = %(state)s)
  AND (%(before)s::bigint IS NULL OR j.id < %(before)s)
ORDER BY j.id DESC
LIMIT %(limit)s
"""
CANCEL = "SELECT procrastinate_cancel_job_v1(%(id)s, false, false) AS id"
STATUS = "SELECT status::text AS status FROM procrastinate_jobs WHERE id = %(id)s"


def list_jobs(
    conn: psycopg.Connection[Any],
    *,
    state: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], int | None]:
    """Classification jobs, newest first, with their last attempt's error; and the next cursor.

    >>> list_jobs(conn, state="failed")[0][0]["error"]  # doctest: +SKIP
    'ContentNotFound: content 7 not found'
    """
    if state is not None and state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    params = {"queue": QUEUE, "task": TASK, "state": state, "before": before, "limit": limit + 1}
    rows = []
    for row in conn.execute(JOBS, params):
        job = dict(row)
        error_type, message = job.pop("error_type"), job.pop("message")
        job["error"] = f"{error_type}: {message}" if error_type else None
        rows.append(job)
    page = rows[:limit]
    return page, (page[-1]["id"] if len(rows) > limit and page else None)


def cancel(conn: psycopg.Connection[Any], job_id: int) -> str:
    """Cancel a waiting job: `cancelled`, `not found`, or `not waiting (status S)`."""
    with conn.transaction():
        row = conn.execute(CANCEL, {"id": job_id}).fetchone()
        if row is not None and _first(row) is not None:
            return "cancelled"
        current = conn.execute(STATUS, {"id": job_id}).fetchone()
    if current is None:
        return "not found"
    return f"not waiting (status {_first(current)})"


def _first(row: Any) -> Any:
    return next(iter(row.values())) if isinstance(row, dict) else row[0]
