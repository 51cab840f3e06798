"""Jobs over HTTP: a page by state with each job's last error, retry and cancel."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from volfefe.errors import JobNotFound
from volfefe.jobs.listing import STATES, cancel, list_jobs
from volfefe.jobs.queue import QUEUE, retry, status
from volfefe.web import params
from volfefe.web.access import require_writer
from volfefe.web.encode import JSON
from volfefe.web.errors import JobStateConflict
from volfefe.web.state import AppState, app_state

MAX_PAGE = 200


def jobs_page(request: Request) -> Response:
    """`GET /api/v1/jobs?state=failed`: counts by state, and jobs newest first."""
    state = app_state(request)
    query = request.query_params
    wanted = params.choice(query, "state", STATES)
    before = params.integer(query, "cursor", low=1)
    limit = params.integer(query, "limit", low=1, high=MAX_PAGE) or 50
    with state.db.connection() as conn:
        jobs, cursor = list_jobs(conn, state=wanted, before=before, limit=limit)
        queue = status(conn, failures=0)
    return JSON(
        {
            "counts": queue["queues"].get(QUEUE, {}),
            "oldest_waiting_s": queue["oldest_waiting_s"],
            "jobs": jobs,
            "next_cursor": cursor,
        }
    )


def retry_job(request: Request) -> Response:
    """`POST /api/v1/jobs/{id}/retry`: queue a failed job again."""
    state = app_state(request)
    require_writer(request, state.settings.api_token)
    job_id = params.row_id(request, missing_job)
    return JSON({"id": job_id, "status": do_retry(state, job_id)})


def cancel_job(request: Request) -> Response:
    """`POST /api/v1/jobs/{id}/cancel`: cancel a waiting job."""
    state = app_state(request)
    require_writer(request, state.settings.api_token)
    job_id = params.row_id(request, missing_job)
    return JSON({"id": job_id, "status": do_cancel(state, job_id)})


def missing_job(job_id: int) -> JobNotFound:
    """The error for a job id that names no job."""
    return JobNotFound(job_id)


def do_retry(state: AppState, job_id: int) -> str:
    """Retry `job_id` (`todo` afterwards) or raise JobNotFound / JobStateConflict."""
    with state.db.connection() as conn:
        outcome = retry(conn, [job_id])[job_id]
    if outcome == "retried":
        return "todo"
    if outcome == "not found":
        raise missing_job(job_id)
    raise JobStateConflict(f"job {job_id} cannot be retried: {outcome}")


def do_cancel(state: AppState, job_id: int) -> str:
    """Cancel `job_id` (`cancelled` afterwards) or raise JobNotFound / JobStateConflict."""
    with state.db.connection() as conn:
        outcome = cancel(conn, job_id)
    if outcome == "cancelled":
        return "cancelled"
    if outcome == "not found":
        raise missing_job(job_id)
    raise JobStateConflict(f"job {job_id} cannot be cancelled: {outcome}")
