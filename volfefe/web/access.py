"""Who may write, and how much a request may send.

Write routes need `Authorization: Bearer <VOLFEFE_API_TOKEN>`; the dashboard's buttons send
a session cookie (HttpOnly, SameSite=Strict, signed, never the token: login.py) set by its
login page, and are also refused when the browser says the form came from another origin.
With no token configured (serve then listens on loopback only) every write is allowed. A
refused request is logged with its route and client address, never with the token it sent.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import orjson
from starlette.requests import Request

from volfefe.web.errors import InvalidRequest, RequestTooLarge, Unauthorized
from volfefe.web.login import COOKIE, valid_session

logger = logging.getLogger(__name__)


def require_writer(
    request: Request, token: str | None, *, session_max_age: float | None = None
) -> None:
    """Raise `Unauthorized` unless the request carries `token` as Bearer, or (when
    `session_max_age` is given: the dashboard) a session cookie of a login with it made less
    than that many seconds ago."""
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return
    cookie = request.cookies.get(COOKIE, "")
    if (
        session_max_age is not None
        and same_origin(request)
        and valid_session(cookie, token, session_max_age)
    ):
        return
    client = request.client.host if request.client else "?"
    logger.warning(
        "401 for %s %s from %s: bad or missing token", request.method, request.url.path, client
    )
    raise Unauthorized("this route needs the header `Authorization: Bearer <VOLFEFE_API_TOKEN>`")


def same_origin(request: Request) -> bool:
    """False when the browser says the request was sent by a page of another origin."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or `RequestTooLarge` as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"the body has {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestTooLarge(f"the body is over the limit of {limit} bytes")
    return bytes(body)


async def read_json(request: Request, limit: int) -> Any:
    """The JSON body (at most `limit` bytes), or `InvalidRequest` saying what is wrong."""
    body = await read_body(request, limit)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise InvalidRequest(f"the body is not valid JSON: {err}") from None


def field_list(body: Any, name: str, max_items: int) -> list[Any]:
    """`body[name]` as a non-empty list of at most `max_items` items."""
    if not isinstance(body, dict) or name not in body:
        raise InvalidRequest(f'expected a JSON object with a "{name}" list')
    items = body[name]
    if not isinstance(items, list) or not items:
        raise InvalidRequest(f'"{name}" must be a non-empty list')
    if len(items) > max_items:
        raise RequestTooLarge(f'"{name}" has {len(items)} items; the limit is {max_items}')
    return items
