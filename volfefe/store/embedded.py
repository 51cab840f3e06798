"""The embedded PostgreSQL server (pgserver), used when no `DATABASE_URL` is set.

Sharing the embedded server. pgserver serialises start-up with an inter-process file lock and
records every attached pid in `pgdata/.handle_pids.json`; the server is reused by whoever comes
next. We use `cleanup_mode=None`: the server is never stopped on exit, so one volfefe process
exiting can never stop it under another (pgserver's "stop" mode runs `pg_ctl stop`, which
disconnects *every* client, including ones pgserver does not know about, such as psql or a
child given the URL), and the next run reuses it instantly. Stop it by hand with
`pg_ctl -D <data_dir>/pgdata stop` (as the `pgserver` user when running as root).
"""

from __future__ import annotations

import contextlib
import subprocess
import warnings
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from volfefe.config import Settings
from volfefe.errors import DatabaseUnavailable

EMBEDDED_DBNAME = "volfefe"

DATABASE_EXISTS = "SELECT 1 FROM pg_database WHERE datname = %(name)s"


def embedded_database_url(
    settings: Settings, connect: Callable[[str], psycopg.Connection[Any]]
) -> str:
    """Start (or attach to) the embedded server and create database "volfefe" once; its URL."""
    admin_url = _embedded_server_url(settings)
    with connect(admin_url) as conn:
        _create_database_once(conn, EMBEDDED_DBNAME)
    return make_conninfo(admin_url, dbname=EMBEDDED_DBNAME)


def _embedded_server_url(settings: Settings) -> str:
    """Start (or attach to) the pgserver instance in `<data_dir>/pgdata`; its admin URL."""
    pgdata = settings.data_dir / "pgdata"
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; its fallback is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from pgserver.postgres_server import get_server
    try:
        # get_server() makes pgdata with exist_ok=False outside its lock, so two first runs
        # would race there; an existing empty folder is fine for it (and for initdb).
        pgdata.mkdir(parents=True, exist_ok=True)
        return get_server(pgdata, cleanup_mode=None).get_uri("postgres")
    except (OSError, subprocess.SubprocessError, RuntimeError, AssertionError) as err:
        raise DatabaseUnavailable(
            f"cannot start the embedded PostgreSQL in {pgdata}: {err} (see {pgdata / 'log'})"
        ) from err


def _create_database_once(conn: psycopg.Connection[Any], name: str) -> None:
    """CREATE DATABASE unless it exists; a concurrent creator winning the race is fine."""
    if conn.execute(DATABASE_EXISTS, {"name": name}).fetchone():
        return
    # Another volfefe process may create it between our check and our CREATE; that is fine.
    with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
