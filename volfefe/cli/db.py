"""`volfefe db ...`: the database itself (schema migrations)."""

from __future__ import annotations

import click

from volfefe.cli.common import current_settings
from volfefe.store.connect import connect, resolve_database_url
from volfefe.store.migrate import migrate


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("migrate")
def migrate_command() -> None:
    """Apply pending migrations and say which (or that the schema is up to date)."""
    url = resolve_database_url(current_settings(), auto_migrate=False)
    with connect(url) as conn:
        applied = migrate(conn)
    for version in applied:
        click.echo(f"applied {version}")
    if not applied:
        click.echo("database schema is up to date")
