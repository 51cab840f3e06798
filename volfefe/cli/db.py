"""`volfefe db ...`: the database itself (schema migrations, the embedded server)."""

from __future__ import annotations

import click

from volfefe.cli.common import current_settings
from volfefe.errors import SchemaOutdated
from volfefe.store.connect import connect, describe_target, resolve_database_url
from volfefe.store.embedded import embedded_pgdata, embedded_running, stop_embedded
from volfefe.store.migrate import migrate, pending_migrations
from volfefe.store.switches import apply_switches, auto_enqueue


@click.group("db")
def db_group() -> None:
    """Manage the database schema and the embedded server."""


@db_group.command("migrate")
def migrate_command() -> None:
    """Apply pending migrations and say which (or that the schema is up to date); apply
    VOLFEFE_AUTO_ENQUEUE when it is set."""
    settings = current_settings()
    url = resolve_database_url(settings, auto_migrate=False)
    with connect(url) as conn:
        applied = migrate(conn)
        apply_switches(conn, settings.auto_enqueue)
        enqueue_on = auto_enqueue(conn)
    for version in applied:
        click.echo(f"applied {version}")
    if not applied:
        click.echo("database schema is up to date")
    if settings.auto_enqueue is not None:
        click.echo(f"auto-enqueue {'on' if enqueue_on else 'off'}")


@db_group.command("status")
def status_command() -> None:
    """Which database is used, whether it answers, and whether its schema is current.

    With no DATABASE_URL this is the embedded server: exit status 1 when it is not running
    (it is not started by this command). An unreachable DATABASE_URL exits 4, and so does a
    schema with pending migrations (SchemaOutdated: run `volfefe db migrate`).
    """
    settings = current_settings()
    if settings.database_url:
        url = settings.database_url
        click.echo(f"database: DATABASE_URL, {describe_target(url)}")
    else:
        pgdata = embedded_pgdata(settings)
        if not embedded_running(settings):
            click.echo(f"database: embedded server in {pgdata}: not running")
            click.get_current_context().exit(1)
        url = resolve_database_url(settings, auto_migrate=False)
        click.echo(f"database: embedded server in {pgdata}: running, {describe_target(url)}")
    with connect(url) as conn:
        pending = pending_migrations(conn)
    if pending:
        click.echo(f"schema: {len(pending)} migration(s) pending ({', '.join(pending)})")
        raise SchemaOutdated(pending)  # a deploy script can tell: exit 4
    click.echo("schema: up to date")


@db_group.command("stop")
def stop_command() -> None:
    """Stop the embedded server (volfefe leaves it running on purpose; the next command that
    needs it starts it again). Connected clients are disconnected."""
    settings = current_settings()
    if settings.database_url:
        raise click.UsageError(
            "DATABASE_URL is set: volfefe does not stop a server it did not start"
        )
    pgdata = embedded_pgdata(settings)
    if stop_embedded(settings):
        click.echo(f"stopped the embedded server in {pgdata}")
    else:
        click.echo(f"the embedded server in {pgdata} is not running")
