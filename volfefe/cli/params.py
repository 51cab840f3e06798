"""Parameter types of the command line: post ids and durations."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import click

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
        if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
            self.fail(
                f"expected comma-separated positive ids such as 1,2,3, got {value!r}", param, ctx
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
