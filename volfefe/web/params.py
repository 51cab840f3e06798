"""Query parameters, checked: each parser raises `InvalidRequest` naming the parameter.

>>> from starlette.datastructures import QueryParams
>>> number(QueryParams("min_confidence=0.5"), "min_confidence", low=0, high=1)
0.5
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from starlette.datastructures import QueryParams
from starlette.requests import Request

from volfefe.store.posts import BIGINT_MAX
from volfefe.web.errors import InvalidRequest


def text(query: QueryParams, name: str) -> str | None:
    """A text parameter; empty counts as absent. PostgreSQL text cannot hold a NUL byte."""
    value = query.get(name)
    if value and "\x00" in value:
        raise InvalidRequest(f"{name} must not contain a NUL byte")
    return value if value else None


def choice(query: QueryParams, name: str, choices: Sequence[str]) -> str | None:
    """One of `choices`, or None when absent."""
    value = text(query, name)
    if value is not None and value not in choices:
        raise InvalidRequest(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def integer(query: QueryParams, name: str, *, low: int = 0, high: int = BIGINT_MAX) -> int | None:
    """A whole number within [low, high] (an id at most, by default), or None when absent."""
    value = text(query, name)
    if value is None:
        return None
    try:
        number_ = int(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a whole number, got {value!r}") from None
    if not low <= number_ <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}, got {number_}")
    return number_


def number(query: QueryParams, name: str, *, low: float, high: float) -> float | None:
    """A number within [low, high], or None when absent."""
    value = text(query, name)
    if value is None:
        return None
    try:
        parsed = float(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a number, got {value!r}") from None
    if not low <= parsed <= high:
        raise InvalidRequest(f"{name} must be between {low:g} and {high:g}, got {value}")
    return parsed


def timestamp(query: QueryParams, name: str) -> datetime | None:
    """An ISO 8601 date or time (no zone = UTC), or None when absent."""
    value = text(query, name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{name} must be an ISO 8601 date or time, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def flag(query: QueryParams, name: str) -> bool | None:
    """true/false (also 1/0, yes/no), or None when absent."""
    value = text(query, name)
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidRequest(f"{name} must be true or false, got {value!r}")


def row_id(request: Request, not_found: Callable[[int], Exception]) -> int:
    """The path's `{id:int}`; past the largest bigint it names no row, so `not_found(id)`
    is raised before PostgreSQL could refuse the number."""
    value = int(request.path_params["id"])
    if value > BIGINT_MAX:
        raise not_found(value)
    return value
