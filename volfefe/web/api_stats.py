"""`GET /api/v1/stats` (the overview's numbers) and `GET /api/v1/timeline`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from volfefe.store.browse import BUCKETS, timeline
from volfefe.web import overview, params
from volfefe.web.encode import JSON
from volfefe.web.state import app_state

MAX_BUCKETS = 2000


def stats(request: Request) -> Response:
    """Totals, distribution, backlog, throughput over the last hour, children."""
    return JSON(overview.collect(app_state(request)))


def timeline_route(request: Request) -> Response:
    """Posts per sentiment and mean confidence per hour or day of `published_at` (UTC)."""
    state = app_state(request)
    query = request.query_params
    bucket = params.choice(query, "bucket", BUCKETS) or "day"
    limit = params.integer(query, "limit", low=1, high=MAX_BUCKETS) or 500
    with state.db.connection() as conn:
        rows = timeline(
            conn,
            bucket,
            since=params.timestamp(query, "since"),
            until=params.timestamp(query, "until"),
            limit=limit,
        )
    return JSON({"bucket": bucket, "buckets": rows})
