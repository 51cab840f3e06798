"""`volfefe watch`: print each stored classification as it lands (after a catch-up)."""

from __future__ import annotations

import click

from volfefe.cli.common import current_settings, echo_json
from volfefe.store.connect import connect, resolve_database_url
from volfefe.store.migrate import require_current_schema
from volfefe.store.signals import watch


@click.command("watch")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--since",
    type=click.IntRange(min=0),
    help="First print every classification with an id above ID (the last one you handled).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after SECONDS without a new classification (default: never).",
)
def watch_command(as_json: bool, since: int | None, timeout: float | None) -> None:
    """Print each new classification as it is stored, until Ctrl-C.

    Listens first, then prints everything stored after --since, then each new result once.
    NOTIFY is at-most-once; restarting with --since <last id> is what makes the stream
    complete.
    """
    url = resolve_database_url(current_settings())
    with connect(url) as conn:
        require_current_schema(conn)
    for signal in watch(url, since=since, timeout=timeout):
        if as_json:
            echo_json(signal.to_dict())
        else:
            click.echo(
                f"{signal.id} content {signal.content_id} {signal.sentiment} "
                f"{signal.confidence:.3f} {signal.model_version} "
                f"{signal.classified_at.isoformat()}"
            )
