"""The signal tape: `GET /tape` (the page) and `GET /api/v1/tape` (the same rows as JSON).

```
filters   sentiment, min_confidence, source, author, q (text), as GET parameters: the page
          works without JavaScript (the form reloads it), and static/tape.js applies the
          same filters in the browser to the rows shown and to those that arrive live
cursors   before (the next, older page), after (what is newer than a row: the live fetch)
```
A bad parameter is 422 InvalidRequest, on the page as in the API.
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from volfefe.result import SENTIMENTS
from volfefe.store.tape import TapeFilter, source_names, tape
from volfefe.web import params
from volfefe.web.encode import JSON
from volfefe.web.pages import render
from volfefe.web.state import app_state

MAX_PAGE = 200
FILTERS = ("sentiment", "min_confidence", "source", "author", "q")


def routes() -> list[Route]:
    """The tape's page and its JSON route."""
    return [
        Route("/tape", tape_page, methods=["GET"]),
        Route("/api/v1/tape", tape_api, methods=["GET"]),
    ]


def read_filter(request: Request) -> TapeFilter:
    """The tape's filters and cursors from the query string (InvalidRequest if bad)."""
    query = request.query_params
    return TapeFilter(
        sentiment=params.choice(query, "sentiment", SENTIMENTS),
        min_confidence=params.number(query, "min_confidence", low=0.0, high=1.0),
        source=params.text(query, "source"),
        author=params.text(query, "author"),
        search=params.text(query, "q"),
        after=params.integer(query, "after"),
        before=params.integer(query, "before", low=1),
        limit=params.integer(query, "limit", low=1, high=MAX_PAGE) or 50,
    )


def signal_json(row: dict[str, Any]) -> dict[str, Any]:
    """One row of the tape as the API shows it."""
    return {
        "id": row["id"],
        "content_id": row["content_id"],
        "source": row["source"],
        "author": row["author"],
        "text": row["text"],
        "published_at": row["published_at"],
        "arrived_at": row["arrived_at"],
        "classified_at": row["classified_at"],
        "latency_s": round(row["latency_s"], 3),
        "sentiment": row["sentiment"],
        "confidence": row["confidence"],
        "model_version": row["model_version"],
        "tokens": row["tokens"],
    }


def tape_api(request: Request) -> Response:
    """`GET /api/v1/tape`: `{signals, next_cursor, computed_at}`, newest first."""
    where = read_filter(request)
    with app_state(request).db.connection() as conn:
        rows, cursor = tape(conn, where)
    return JSON(
        {
            "signals": [signal_json(row) for row in rows],
            "next_cursor": cursor,
            "computed_at": datetime.now(UTC),
        }
    )


def tape_page(request: Request) -> Response:
    """The newest signals with the filters as a GET form; live rows come from tape.js."""
    where = read_filter(request)
    with app_state(request).db.connection() as conn:
        rows, cursor = tape(conn, where)
        sources = source_names(conn)
    query = {k: v for k, v in request.query_params.items() if k in FILTERS and v}
    if where.source and where.source not in sources:
        sources.append(where.source)
    next_url = None
    if cursor is not None:
        next_url = "/tape?" + urllib.parse.urlencode({**query, "before": cursor})
    return render(
        request,
        "tape.html",
        signals=[signal_json(row) for row in rows],
        query=query,
        sentiments=SENTIMENTS,
        sources=sources,
        next_url=next_url,
        live=where.before is None,
        computed_at=datetime.now(UTC),
    )
