"""`GET /api/v1/index`: the sentiment index per time bucket, as JSON or CSV.

The range and the bucket come from `volfefe.web.timerange` (`range`, or `since`/`until`;
`bucket`), `source` keeps one source's posts, `format=csv` answers `text/csv`. The index
itself is defined in `volfefe.store.sentiment_index`.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import Response

from volfefe.store.sentiment_index import sentiment_index
from volfefe.web import params, timerange
from volfefe.web.encode import JSON
from volfefe.web.state import app_state
from volfefe.web.timerange import TimeRange, iso

FIELDS = ("start", "posts", "index", "positive", "negative", "neutral")
DIGITS = 6  # the index is rounded to this many decimals


def index_route(request: Request) -> Response:
    """Every bucket of the range with its post count, index and counts per sentiment."""
    query = request.query_params
    wanted = params.choice(query, "format", ("json", "csv")) or "json"
    source = params.text(query, "source")
    span = timerange.parse(query)
    rows = index_rows(request, span, source)
    if wanted == "csv":
        return Response(
            as_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'inline; filename="volfefe-index.csv"'},
        )
    return JSON(
        {
            "since": iso(span.since),
            "until": iso(span.until),
            "bucket": span.bucket_text,
            "bucket_seconds": int(span.bucket.total_seconds()),
            "source": source,
            "buckets": rows,
        }
    )


def index_buckets(
    conn: psycopg.Connection[Any], span: TimeRange, source: str | None
) -> list[dict[str, Any]]:
    """The sentiment index of each bucket of `span` (store.sentiment_index's rows)."""
    return sentiment_index(
        conn,
        start=span.start,
        since=span.since,
        until=span.until,
        bucket=span.bucket,
        source=source,
    )


def index_rows(request: Request, span: TimeRange, source: str | None) -> list[dict[str, Any]]:
    """The buckets of `span` as the API gives them (start in ISO 8601 UTC, index rounded)."""
    with app_state(request).db.connection() as conn:
        found = index_buckets(conn, span, source)
    return [
        {
            "start": iso(row["start"]),
            "posts": row["posts"],
            "index": None if row["index"] is None else round(row["index"], DIGITS),
            "positive": row["positive"],
            "negative": row["negative"],
            "neutral": row["neutral"],
        }
        for row in found
    ]


def as_csv(rows: list[dict[str, Any]]) -> str:
    """A header line, then one line per bucket; an empty bucket's index is an empty field.

    >>> print(as_csv([{"start": "2026-01-01T00:00:00Z", "posts": 0, "index": None,
    ...                "positive": 0, "negative": 0, "neutral": 0}]), end="")
    start,posts,index,positive,negative,neutral
    2026-01-01T00:00:00Z,0,,0,0,0
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
