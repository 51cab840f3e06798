"""Errors of the HTTP layer, and how every volfefe error becomes a status and a JSON body.

The body is always `{"error": {"type": TypeName, "message": ...}}`, with the same type names
the CLI prints. Overload and a broken or closed pool answer 503 with `Retry-After`, too many
failed logins 429 with it.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from volfefe.errors import (
    ClassificationFailed,
    ConfigError,
    ContentNotFound,
    DatabaseUnavailable,
    DeliveryFailed,
    InvalidSink,
    JobNotFound,
    NoTextError,
    Overloaded,
    PoolBroken,
    PoolClosed,
    SchemaOutdated,
    SinkNotFound,
    VolfefeError,
    WorkerError,
)

logger = logging.getLogger(__name__)

RETRY_AFTER = "5"  # seconds a client should wait after a 503


class InvalidRequest(VolfefeError):
    """The request body or a parameter is not what the route takes (HTTP 422)."""


class Unauthorized(VolfefeError):
    """A write route was called without the right `Authorization: Bearer` token (HTTP 401)."""


class RequestTooLarge(VolfefeError):
    """The body, the number of items or one text is over the configured limit (HTTP 413)."""


class TooManyAttempts(VolfefeError):
    """Too many failed logins from this client address lately (HTTP 429, with Retry-After:
    the whole seconds until it may try again).

    >>> TooManyAttempts("wait", retry_after=60).retry_after
    60
    """

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobStateConflict(VolfefeError):
    """The job is not in a state that allows this action, e.g. retrying a running job (409)."""


class NotFound(VolfefeError):
    """No route or page at this address (HTTP 404)."""


STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (InvalidRequest, 422),
    (NoTextError, 422),
    (ClassificationFailed, 422),
    (InvalidSink, 422),
    (Unauthorized, 401),
    (TooManyAttempts, 429),
    (RequestTooLarge, 413),
    (ContentNotFound, 404),
    (JobNotFound, 404),
    (SinkNotFound, 404),
    (NotFound, 404),
    (JobStateConflict, 409),
    (DeliveryFailed, 502),  # the sink's receiver, not this server, failed
    (Overloaded, 503),
    (PoolBroken, 503),
    (PoolClosed, 503),
    (DatabaseUnavailable, 503),
    (SchemaOutdated, 503),
    (ConfigError, 503),  # only the classifier raises it mid-run: no child can start any more
    (WorkerError, 503),
)
UNAVAILABLE = (Overloaded, PoolBroken, PoolClosed, DatabaseUnavailable, SchemaOutdated)


def status_for(exc: BaseException) -> int:
    """The HTTP status of an error.

    >>> status_for(InvalidRequest("x")), status_for(Overloaded("busy")), status_for(KeyError())
    (422, 503, 500)
    """
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(exc: BaseException) -> dict[str, Any]:
    """`{"type", "message"}` for one error (used per text and per row as well)."""
    return {"type": type(exc).__name__, "message": str(exc)}


def retry_after(exc: BaseException, status: int) -> str | None:
    """The `Retry-After` header for `exc` answered with `status`, if it gets one."""
    if isinstance(exc, TooManyAttempts):
        return str(exc.retry_after)
    return RETRY_AFTER if status == 503 else None


def error_response(exc: BaseException, status: int | None = None) -> Response:
    """The JSON error response for `exc`, with `Retry-After` on a 503 and a 429."""
    code = status or status_for(exc)
    wait = retry_after(exc, code)
    headers = {"Retry-After": wait} if wait is not None else None
    body = orjson.dumps({"error": error_body(exc)})
    return Response(body, status_code=code, media_type="application/json", headers=headers)


async def on_volfefe_error(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for every VolfefeError a route lets through."""
    if status_for(exc) == 500:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no such route, method not allowed) in our JSON shape."""
    assert isinstance(exc, HTTPException)
    kinds = {404: NotFound, 405: InvalidRequest}
    kind = kinds.get(exc.status_code, InvalidRequest)
    return error_response(kind(str(exc.detail)), exc.status_code)


async def on_database_error(request: Request, exc: Exception) -> Response:
    """A lost or unreachable database: 503 `DatabaseUnavailable` with Retry-After."""
    logger.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
    return error_response(DatabaseUnavailable(f"the database is unavailable: {exc}"))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback; the client gets a 500 without internals."""
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(RuntimeError("internal error; see the server log"), 500)
