"""`GET /api/v1/stream`: server-sent events, one `classified` event per stored classification.

```
client connects (Last-Event-ID: N, or ?after=N)
  subscribe to the hub first, so nothing committed from now on is missed
  send classifications with id > N from the table, oldest first (catch-up)
  then forward live notifications whose id is above the last one sent
  a comment line every KEEPALIVE seconds keeps proxies from closing the stream
```
The event id is the classification id. A result that replaces an earlier one (reclassify)
keeps its id: it arrives live, but a reconnecting client does not receive it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from volfefe.store.browse import recent_classifications
from volfefe.store.posts import BIGINT_MAX
from volfefe.web.errors import InvalidRequest
from volfefe.web.state import AppState, app_state

KEEPALIVE = 15.0  # seconds between comment lines on a quiet stream
CATCH_UP = 1000  # classifications sent per catch-up query
FIELDS = ("id", "content_id", "sentiment", "confidence", "model_version", "classified_at")


async def stream(request: Request) -> Response:
    """Stream classifications as `event: classified` with `id:` and a JSON `data:` line."""
    state = app_state(request)
    raw = request.headers.get("last-event-id") or request.query_params.get("after")
    after = None
    if raw:
        try:
            after = int(raw)
        except ValueError:
            after = None
        if after is None or abs(after) > BIGINT_MAX:
            raise InvalidRequest(f"Last-Event-ID must be a classification id, got {raw!r}")
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(state, after), media_type="text/event-stream", headers=headers)


async def _events(state: AppState, after: int | None) -> AsyncIterator[bytes]:
    queue = state.hub.subscribe()
    try:
        yield b"retry: 2000\n\n"
        last = after or 0
        if after is not None:
            while True:
                rows = await run_in_threadpool(_catch_up, state, last)
                for row in rows:
                    yield _event(row)
                    last = row["id"]
                if len(rows) < CATCH_UP:
                    break
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if event is None:
                return  # dropped by the hub: the client reconnects and catches up
            if after is not None and int(event.get("id", 0)) <= last:
                continue
            last = max(last, int(event.get("id", 0)))
            yield _event(event)
    finally:
        state.hub.unsubscribe(queue)


def _catch_up(state: AppState, after: int) -> list[dict[str, Any]]:
    with state.db.connection() as conn:
        return recent_classifications(conn, after=after, limit=CATCH_UP, oldest_first=True)


def _event(row: dict[str, Any]) -> bytes:
    data = orjson.dumps({name: row.get(name) for name in FIELDS})
    return b"id: %d\nevent: classified\ndata: %s\n\n" % (int(row["id"]), data)
