"""What the command modules share: the Settings of this run, JSON output, counted nouns."""

from __future__ import annotations

from typing import Any

import click
import orjson

from volfefe.config import Settings


def current_settings() -> Settings:
    """The `Settings` the main group stored in the click context."""
    settings = click.get_current_context().find_object(Settings)
    if settings is None:
        raise RuntimeError("the volfefe CLI group must set ctx.obj to a Settings")
    return settings


def echo_json(obj: dict[str, Any]) -> None:
    """Print one JSON object on a line of stdout."""
    click.echo(orjson.dumps(obj).decode())


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`count` and the noun, singular for exactly one (`nouns` when adding "s" is wrong).

    >>> plural(1, "classification job"), plural(0, "finished job"), plural(2, "child", "children")
    ('1 classification job', '0 finished jobs', '2 children')
    """
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def with_model(settings: Settings) -> Settings:
    """`settings` whose hub model is pulled into the cache first (`volfefe model pull`), so the
    children only load it: a slow download never counts against their boot timeout."""
    from volfefe.supervisor.pull import pulled_settings

    quiet = bool(click.get_current_context().meta.get("quiet", False))
    return pulled_settings(settings, progress=not quiet)
