"""`volfefe db ...`: the database itself (schema migrations)."""

from __future__ import annotations

import click

from volfefe.cli.common import current_settings
from volfefe.store.connect import connect, resolve_database_url
from volfefe.store.migrate import migrate
from volfefe.store.switches import apply_switches, auto_enqueue


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


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
