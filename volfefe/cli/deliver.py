"""`volfefe deliver`: a delivery process of its own (sinks: webhooks, NATS JetStream)."""

from __future__ import annotations

import asyncio
import signal

import click

from volfefe.cli.common import current_settings
from volfefe.config import Settings
from volfefe.sinks.deliver import Deliverer
from volfefe.store.connect import connect, describe_target, resolve_database_url
from volfefe.store.migrate import require_current_schema

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@click.command("deliver")
def deliver_command() -> None:
    """Send every stored classification to the sinks until SIGTERM or Ctrl-C.

    `jobs worker` and `serve --with-worker` deliver as well unless given --no-deliver; any
    number of delivery processes may run, each sink is sent to by one of them at a time.
    """
    settings = current_settings()
    url = resolve_database_url(settings)
    with connect(url) as conn:
        require_current_schema(conn)
    if not click.get_current_context().meta.get("quiet"):
        click.echo(f"deliver: {describe_target(url)}", err=True)
    asyncio.run(deliver_until_signal(url, settings))


async def deliver_until_signal(url: str, settings: Settings) -> None:
    """Run a Deliverer until SIGTERM or SIGINT (then the command exits 0)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stopping.set)
    try:
        await Deliverer(url, settings).run(stopping)
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
