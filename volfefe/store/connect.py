"""Connections: where the database is, and how to open one with a clear error when it is not.

```
resolve_database_url(settings)
  settings.database_url set?  -> use it as is (run `volfefe db migrate` yourself)
  otherwise                   -> embedded PostgreSQL in <data_dir>/pgdata (pgserver):
                                 start it, or attach to the one already running there;
                                 create database "volfefe"; migrate it
```
The embedded server itself: `volfefe.store.embedded`.
"""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row

from volfefe.config import Settings
from volfefe.errors import ConfigError, DatabaseUnavailable
from volfefe.store.embedded import embedded_database_url
from volfefe.store.migrate import migrate
from volfefe.store.switches import apply_switches

CONNECT_TIMEOUT = 10.0  # seconds; libpq rounds up to whole seconds, minimum 2


def resolve_database_url(settings: Settings, *, auto_migrate: bool = True) -> str:
    """The URL to use: `settings.database_url`, else the embedded server's (started on demand).

    The embedded database is migrated here, and VOLFEFE_AUTO_ENQUEUE applied when set (unless
    `auto_migrate=False`); a database given by
    URL is left alone, so production schema changes stay an explicit `volfefe db migrate`.

    >>> resolve_database_url(Settings(database_url="postgresql://db.example/volfefe"))
    'postgresql://db.example/volfefe'
    """
    if settings.database_url:
        return settings.database_url
    url = embedded_database_url(settings, connect)
    if auto_migrate:
        with connect(url) as conn:
            migrate(conn)
            apply_switches(conn, settings.auto_enqueue)
    return url


def connect(
    target: Settings | str,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    autocommit: bool = True,
    application_name: str = "volfefe",
) -> psycopg.Connection[DictRow]:
    """Open a connection (dict rows, autocommit by default) or raise `DatabaseUnavailable`.

    `target` is a URL / conninfo string, or `Settings` (resolved with `resolve_database_url`,
    which for the embedded server costs two extra connections: long-lived processes should
    resolve once and pass the URL). The error names host, port and database, never a password.

    >>> with connect("postgresql://postgres@127.0.0.1:5432/test") as conn:  # doctest: +SKIP
    ...     conn.execute("SELECT 1 AS one").fetchone()
    {'one': 1}
    """
    url = resolve_database_url(target) if isinstance(target, Settings) else target
    where = describe_target(url)
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            row_factory=dict_row,
            connect_timeout=max(1, round(connect_timeout)),
            application_name=application_name,
        )
    except psycopg.OperationalError as err:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {where}: {err}") from err


def describe_target(url: str) -> str:
    """Where a URL points, for messages: host, port, database and user, without the password.

    >>> describe_target("postgresql://bob:secret@db.example:6543/prod")
    'host db.example port 6543, database prod, user bob'
    """
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        # libpq's message may quote part of the string, and so part of a password.
        raise ConfigError("database_url is not a valid PostgreSQL URL or conninfo") from None
    host = str(params.get("host") or "the default local socket")
    port = f" port {params['port']}" if params.get("port") else ""
    user = f", user {params['user']}" if params.get("user") else ""
    return f"host {host}{port}, database {params.get('dbname') or '(default)'}{user}"
