"""`volfefe sinks ...`: where stored results are sent (webhooks, NATS JetStream subjects)."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from volfefe.cli.common import current_settings, echo_json
from volfefe.cli.terminal import for_terminal
from volfefe.errors import InvalidSink
from volfefe.result import SENTIMENTS
from volfefe.sinks.definition import SinkSpec
from volfefe.sinks.health import describe, health
from volfefe.sinks.table import add_sink, get_sink, remove_sink, set_paused
from volfefe.sinks.transport import send_test
from volfefe.store.connect import connect, resolve_database_url
from volfefe.store.migrate import require_current_schema
from volfefe.store.posts import BIGINT_MAX


def _names(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


@click.group("sinks")
def sinks_group() -> None:
    """Send every stored classification to webhooks or a NATS JetStream subject."""


SINK_ID = click.argument("sink_id", type=click.IntRange(1, BIGINT_MAX))


@sinks_group.command("add")
@click.option("--webhook", metavar="URL", help="POST each result to this http(s) URL.")
@click.option("--secret", help="Signing secret, whsec_ and base64 (default: a new one).")
@click.option("--nats", "subject", metavar="SUBJECT", help="Publish to this JetStream subject.")
@click.option("--url", "bus_url", help="The NATS server [default: nats://127.0.0.1:4222].")
@click.option(
    "--sentiment",
    help=f"Only these sentiments, comma-separated ({', '.join(SENTIMENTS)}).",
)
@click.option(
    "--min-confidence", type=click.FloatRange(0, 1), help="Only results at least this sure."
)
@click.option("--source", help="Only posts of these sources, comma-separated.")
@click.option("--from-start", is_flag=True, help="Also send every result stored so far.")
@click.option("--json", "as_json", is_flag=True, help="Print the sink as JSON.")
def add_command(
    webhook: str | None,
    secret: str | None,
    subject: str | None,
    bus_url: str | None,
    sentiment: str | None,
    min_confidence: float | None,
    source: str | None,
    from_start: bool,
    as_json: bool,
) -> None:
    """Add a sink; print its id (and a webhook's signing secret, shown only here).

    It gets every result stored from now on (--from-start: every one stored so far too), as
    soon as a delivery process runs (`deliver`, `jobs worker`, `serve --with-worker`).
    """
    if (webhook is None) == (subject is None):
        raise click.UsageError("give exactly one of --webhook URL or --nats SUBJECT")
    if webhook is not None and bus_url is not None:
        raise click.UsageError("--url is the NATS server's; a webhook's URL is --webhook")
    if subject is not None and secret is not None:
        raise click.UsageError("--secret signs webhooks; NATS events are not signed")
    spec = (
        SinkSpec.webhook(webhook, secret=secret)
        if webhook is not None
        else SinkSpec.nats(subject or "", url=bus_url)
    )
    spec = spec.filtered(_names(sentiment), min_confidence, _names(source))
    settings = current_settings()
    with connect(resolve_database_url(settings)) as conn:
        require_current_schema(conn)
        sink = add_sink(conn, spec, from_start=from_start)
    if as_json:
        echo_json({**sink.describe(), "secret": sink.secret})
        return
    click.echo(f"sink {sink.id}: {sink.kind} {sink.target}")
    if sink.secret:
        click.echo(f"secret: {sink.secret}")


@sinks_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per sink, with health.")
def list_command(as_json: bool) -> None:
    """Every sink: its state, pending results, lag, last delivery and last error."""
    settings = current_settings()
    with connect(resolve_database_url(settings)) as conn:
        require_current_schema(conn)
        sinks = health(conn, settings.sink_unhealthy_after)
    if as_json:
        for sink in sinks:
            echo_json(sink)
        return
    if not sinks:
        click.echo("no sinks")
    for sink in sinks:
        click.echo(_line(sink))


def _line(sink: dict[str, Any]) -> str:
    last = sink["last_delivery_at"] or "never"
    text = (
        f"{sink['id']} {sink['kind']} {for_terminal(sink['target'], keep_newlines=False)} "
        f"{sink['state']}: delivered {sink['delivered']} (last {last}), pending "
        f"{sink['pending']}, lag {sink['lag_s']:.1f} s, failures {sink['failures']}"
    )
    if sink["state"] in ("failing", "unhealthy") and sink["last_error"]:
        text += f"; last error: {for_terminal(sink['last_error'], keep_newlines=False)}"
    return text


@sinks_group.command("remove")
@SINK_ID
def remove_command(sink_id: int) -> None:
    """Delete sink SINK_ID (exit 1, SinkNotFound, when there is none)."""
    with connect(resolve_database_url(current_settings())) as conn:
        require_current_schema(conn)
        remove_sink(conn, sink_id)
    click.echo(f"sink {sink_id} removed")


@sinks_group.command("pause")
@SINK_ID
def pause_command(sink_id: int) -> None:
    """Send nothing to SINK_ID until it is resumed; it then gets what it missed, in order."""
    _set_paused(sink_id, True)


@sinks_group.command("resume")
@SINK_ID
def resume_command(sink_id: int) -> None:
    """Send to SINK_ID again, starting with what was stored while it was paused."""
    _set_paused(sink_id, False)


def _set_paused(sink_id: int, paused: bool) -> None:
    with connect(resolve_database_url(current_settings())) as conn:
        require_current_schema(conn)
        set_paused(conn, sink_id, paused)
    click.echo(f"sink {sink_id} {'paused' if paused else 'resumed'}")


@sinks_group.command("test")
@SINK_ID
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def test_command(sink_id: int, as_json: bool) -> None:
    """Send a test event (type sink.test) to SINK_ID now; exit 1 (DeliveryFailed) when
    the receiver does not take it."""
    settings = current_settings()
    with connect(resolve_database_url(settings)) as conn:
        require_current_schema(conn)
        sink = get_sink(conn, sink_id)
        described = describe(conn, sink, settings.sink_unhealthy_after)
    if sink.kind not in ("webhook", "nats"):
        raise InvalidSink(f"sink {sink_id} has an unknown kind {sink.kind!r}")
    event = asyncio.run(send_test(sink, settings.sink_timeout))
    if as_json:
        echo_json({"id": sink_id, "event_id": event.id, "delivered": True})
    else:
        click.echo(f"sink {sink_id}: test event {event.id} delivered to {described['target']}")
