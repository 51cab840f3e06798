"""Connections: where the database is, and how to open one with a clear error when it is not.

```
resolve_database_url(settings)
  settings.database_url set?  -> use it as is (run `volfefe db migrate` yourself)
  otherwise                   -> embedded PostgreSQL in <data_dir>/pgdata (pgserver):
                                 start it, or attach to the one already running there;
                                 create database "volfefe"; migrate it
```
The embedded server itself: `volfefe.store.embedded`. `make_pool` / `make_async_pool`: the
connection pools of the long-lived processes (the web app, the job worker).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from volfefe.config import Settings
from volfefe.errors import ConfigError, DatabaseUnavailable
from volfefe.store.deadline import AsyncLimitedConnection, LimitedConnection
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
    "dbname=volfefe host=db.example connect_timeout=10 keepalives=1 ... statement_timeout=60000'"
    """
    if settings.database_url:
        return with_limits(settings.database_url, settings)
    url = with_limits(embedded_database_url(settings, connect), settings)
    if auto_migrate:
        with connect(url) as conn:
            migrate(conn)
            apply_switches(conn, settings.auto_enqueue)
    return url


def with_limits(url: str, settings: Settings) -> str:
    """`url` with the connection limits of `settings` added, unless the URL sets them itself.

    Every connection opened from the result (ours, the job worker's pool, procrastinate's)
    gets a connect timeout, TCP keepalives (a dead peer is noticed `db_keepalive` x 2 seconds
    after the link goes quiet), a TCP user timeout (unacknowledged data for as long aborts the
    connection) and a server-side statement timeout.

    >>> with_limits("postgresql://db.example/volfefe", Settings(db_statement_timeout=0))
    'dbname=volfefe host=db.example connect_timeout=10 keepalives=1 keepalives_idle=10 ...'
    """
    describe_target(url)  # an invalid URL is a ConfigError, before libpq quotes it anywhere
    params = conninfo_to_dict(url)
    idle = max(1, round(settings.db_keepalive))
    limits: dict[str, Any] = {
        "connect_timeout": max(2, round(settings.db_connect_timeout)),
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": max(1, idle // 3),
        "keepalives_count": 3,
        "tcp_user_timeout": idle * 2 * 1000,  # milliseconds
    }
    options = str(params.get("options") or "")
    if settings.db_statement_timeout and "statement_timeout" not in options:
        timeout_ms = round(settings.db_statement_timeout * 1000)
        limits["options"] = f"{options} -c statement_timeout={timeout_ms}".strip()
    extra = {k: v for k, v in limits.items() if k not in params or k == "options"}
    return make_conninfo(url, **extra) if extra else url


def connect(
    target: Settings | str,
    *,
    connect_timeout: float | None = None,
    autocommit: bool = True,
    application_name: str = "volfefe",
) -> psycopg.Connection[DictRow]:
    """Open a connection (dict rows, autocommit by default) or raise `DatabaseUnavailable`.

    Its statements have a client-side deadline too (`volfefe.store.deadline`), so a server
    that stops answering fails them like a dropped connection.

    `target` is a URL / conninfo string, or `Settings` (resolved with `resolve_database_url`,
    which for the embedded server costs two extra connections: long-lived processes should
    resolve once and pass the URL). The error names host, port and database, never a password.

    >>> with connect("postgresql://postgres@127.0.0.1:5432/test") as conn:  # doctest: +SKIP
    ...     conn.execute("SELECT 1 AS one").fetchone()
    {'one': 1}
    """
    url = resolve_database_url(target) if isinstance(target, Settings) else target
    where = describe_target(url)
    if connect_timeout is None:  # the URL's own (see with_limits), else CONNECT_TIMEOUT
        connect_timeout = float(conninfo_to_dict(url).get("connect_timeout") or CONNECT_TIMEOUT)
    try:
        return LimitedConnection.connect(
            url,
            autocommit=autocommit,
            row_factory=dict_row,
            connect_timeout=max(2, round(connect_timeout)),
            application_name=application_name,
        )
    except psycopg.OperationalError as err:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {where}: {err}") from err


def make_pool(
    url: str, *, size: int, name: str, timeout: float, check: bool = True
) -> ConnectionPool[Any]:
    """A pool of autocommit, dict-row connections with a client-side deadline on each
    statement (`volfefe.store.deadline`), not opened yet; `name` is the application name the
    server shows, `timeout` how long a caller waits for a connection. With `check`, a
    connection is checked before each checkout, so one a database restart broke is replaced."""
    return ConnectionPool(
        url,
        connection_class=LimitedConnection,
        min_size=1,
        max_size=size,
        open=False,
        check=ConnectionPool.check_connection if check else None,
        kwargs={"autocommit": True, "row_factory": dict_row, "application_name": name},
        timeout=timeout,
    )


def make_async_pool(url: str, *, size: int, name: str, timeout: float) -> AsyncConnectionPool[Any]:
    """`make_pool` for asyncio code, without the check per checkout (a connection a restart
    broke fails its next statement, a transient error its caller retries)."""
    return AsyncConnectionPool(
        url,
        connection_class=AsyncLimitedConnection,
        min_size=1,
        max_size=size,
        open=False,
        kwargs={"autocommit": True, "row_factory": dict_row, "application_name": name},
        timeout=timeout,
    )


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
