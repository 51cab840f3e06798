"""Sinks over HTTP: list with health, add, remove, pause, resume, test (all token-guarded:
a sink's URL may carry a credential of its receiver)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from volfefe.errors import SinkNotFound
from volfefe.sinks.definition import SinkSpec
from volfefe.sinks.health import describe, health
from volfefe.sinks.table import Sink, add_sink, get_sink, remove_sink, set_paused
from volfefe.sinks.transport import send_test
from volfefe.web import params
from volfefe.web.access import read_json, require_writer
from volfefe.web.encode import JSON
from volfefe.web.errors import InvalidRequest
from volfefe.web.state import AppState, app_state

FIELDS = frozenset(
    {"webhook", "secret", "nats", "url", "sentiments", "min_confidence", "sources", "from_start"}
)


def sinks_page(request: Request) -> Response:
    """`GET /api/v1/sinks`: every sink with its health (no secrets)."""
    state = _writer(request)
    with state.db.connection() as conn:
        return JSON({"sinks": health(conn, state.settings.sink_unhealthy_after)})


async def create(request: Request) -> Response:
    """`POST /api/v1/sinks`: add a webhook (`{"webhook": URL}`) or a NATS subject
    (`{"nats": SUBJECT}`); the answer has its id and, for a webhook, its secret."""
    state = _writer(request)
    body = await read_json(request, state.settings.api_max_body)
    spec, from_start = spec_of(body)
    sink = await run_in_threadpool(_add, state, spec, from_start)
    return JSON({**sink.describe(), "secret": sink.secret})


def _add(state: AppState, spec: SinkSpec, from_start: bool) -> Sink:
    with state.db.connection() as conn:
        return add_sink(conn, spec, from_start=from_start)


def remove(request: Request) -> Response:
    """`DELETE /api/v1/sinks/{id}`."""
    state = _writer(request)
    sink_id = params.row_id(request, SinkNotFound)
    with state.db.connection() as conn:
        remove_sink(conn, sink_id)
    return JSON({"id": sink_id, "removed": True})


def pause(request: Request) -> Response:
    """`POST /api/v1/sinks/{id}/pause`: send nothing until resumed."""
    return _paused(request, True)


def resume(request: Request) -> Response:
    """`POST /api/v1/sinks/{id}/resume`: send again, starting with what it missed."""
    return _paused(request, False)


def _paused(request: Request, paused: bool) -> Response:
    state = _writer(request)
    sink_id = params.row_id(request, SinkNotFound)
    with state.db.connection() as conn:
        sink = set_paused(conn, sink_id, paused)
        return JSON(describe(conn, sink, state.settings.sink_unhealthy_after))


async def test(request: Request) -> Response:
    """`POST /api/v1/sinks/{id}/test`: send a test event now (502 DeliveryFailed if the
    receiver does not take it)."""
    state = _writer(request)
    sink_id = params.row_id(request, SinkNotFound)
    sink = await run_in_threadpool(_get, state, sink_id)
    event = await send_test(sink, state.settings.sink_timeout)
    return JSON({"id": sink_id, "event_id": event.id, "delivered": True})


def _get(state: AppState, sink_id: int) -> Sink:
    with state.db.connection() as conn:
        return get_sink(conn, sink_id)


def _writer(request: Request) -> AppState:
    state = app_state(request)
    require_writer(request, state.settings.api_token)
    return state


def spec_of(body: Any) -> tuple[SinkSpec, bool]:
    """The sink a request body describes, and its `from_start`; InvalidRequest otherwise."""
    if not isinstance(body, dict):
        raise InvalidRequest('expected a JSON object with "webhook" or "nats"')
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
    webhook, subject = body.get("webhook"), body.get("nats")
    if (webhook is None) == (subject is None):
        raise InvalidRequest('give exactly one of "webhook" or "nats"')
    if webhook is not None and "url" in body:
        raise InvalidRequest('"url" is the NATS server\'s; a webhook\'s URL is "webhook"')
    if subject is not None and "secret" in body:
        raise InvalidRequest('"secret" signs webhooks; NATS events are not signed')
    if webhook is not None:
        spec = SinkSpec.webhook(_text(body, "webhook") or "", secret=_text(body, "secret"))
    else:
        spec = SinkSpec.nats(_text(body, "nats") or "", url=_text(body, "url"))
    confidence = body.get("min_confidence")
    if "min_confidence" in body and (
        isinstance(confidence, bool) or not isinstance(confidence, int | float)
    ):
        raise InvalidRequest('"min_confidence" must be a number')
    from_start = body.get("from_start", False)
    if not isinstance(from_start, bool):
        raise InvalidRequest('"from_start" must be true or false')
    spec = spec.filtered(_names(body, "sentiments"), confidence, _names(body, "sources"))
    return spec.checked(), from_start  # InvalidSink (422) says what is wrong


def _text(body: dict[str, Any], name: str) -> str | None:
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, str):
        raise InvalidRequest(f'"{name}" must be a string')
    return value


def _names(body: dict[str, Any], name: str) -> list[str] | None:
    if name not in body:
        return None
    value = body[name]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f'"{name}" must be a non-empty list of strings')
    return value
