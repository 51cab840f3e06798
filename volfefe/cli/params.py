"""Parameter types of the command line: post ids, durations and times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from volfefe.store.posts import BIGINT_MAX

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class IdList(click.ParamType):  # type: ignore[type-arg]
    """A comma-separated list of positive post ids, such as `1,2,3`."""

    name = "IDS"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> list[int]:
        """Parse `1,2,3`; anything else is a usage error."""
        if isinstance(value, list):
            return value
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
        if not parts or not all(p.isdigit() and 0 < int(p) <= BIGINT_MAX for p in parts):
            self.fail(
                f"expected comma-separated positive ids (at most {BIGINT_MAX}) such as 1,2,3,"
                f" got {value!r}",
                param,
                ctx,
            )
        return list(dict.fromkeys(int(p) for p in parts))


class Age(click.ParamType):  # type: ignore[type-arg]
    """A duration such as `7d`, `12h`, `30m`, `90s` or `2w`."""

    name = "AGE"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        """Parse the duration; anything else is a usage error."""
        if isinstance(value, timedelta):
            return value
        match = _AGE.match(str(value))
        if not match:
            self.fail(f"expected a duration such as 7d, 12h or 30m, got {value!r}", param, ctx)
        return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


class Timestamp(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 date or time, with a zone (`Z`, `+02:00`) or without one (then UTC): the
    form `export` writes, so its values can be given back.

    >>> Timestamp().convert("2025-12-20T00:00:00+02:00", None, None).isoformat()
    '2025-12-20T00:00:00+02:00'
    >>> Timestamp().convert("2025-12-20", None, None).isoformat()
    '2025-12-20T00:00:00+00:00'
    """

    name = "DATE"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        """Parse the date or time; anything else is a usage error."""
        if isinstance(value, datetime):
            parsed = value
        else:
            try:
                parsed = datetime.fromisoformat(str(value).strip())
            except ValueError:
                self.fail(
                    "expected an ISO 8601 date or time such as 2025-12-20, "
                    f"2025-12-20T08:00:00Z or 2025-12-20T08:00:00+02:00, got {value!r}",
                    param,
                    ctx,
                )
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
