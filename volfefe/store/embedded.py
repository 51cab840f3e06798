"""The embedded PostgreSQL server (pgserver), used when no `DATABASE_URL` is set.

Sharing the embedded server. pgserver serialises start-up with an inter-process file lock and
records every attached pid in `pgdata/.handle_pids.json`; the server is reused by whoever comes
next. We use `cleanup_mode=None`: the server is never stopped on exit, so one volfefe process
exiting can never stop it under another (pgserver's "stop" mode runs `pg_ctl stop`, which
disconnects *every* client, including ones pgserver does not know about, such as psql or a
child given the URL), and the next run reuses it instantly. `volfefe db stop` stops it, with
pgserver's own `pg_ctl` (as the `pgserver` user when we run as root: pg_ctl refuses root).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from volfefe.config import Settings
from volfefe.errors import DatabaseUnavailable

EMBEDDED_DBNAME = "volfefe"

DATABASE_EXISTS = "SELECT 1 FROM pg_database WHERE datname = %(name)s"
AUTHENTICATION_TIMEOUT_NOW = (
    "SELECT setting::int AS seconds FROM pg_settings WHERE name = 'authentication_timeout'"
)
PG_CTL_TIMEOUT = 60.0  # seconds for pg_ctl status/stop (stop waits for clients to go)
PG_CTL_NOT_RUNNING = 3  # pg_ctl status: no server runs in this folder
START_TIMEOUT = 120.0  # seconds the embedded server may take to start on a loaded machine
START_POLL = 0.2  # seconds between looks at postmaster.pid while it starts
# PostgreSQL 16 (pgserver's) does not signal the "dead-end" backend it forks for a connection
# arriving during a shutdown; the shutdown waits until that backend has read a startup packet
# or given up after authentication_timeout (60 s by default). Local clients authenticate in
# milliseconds (trust), so a shorter bound keeps a stop or restart from being held a minute.
AUTHENTICATION_TIMEOUT = 10  # seconds


def embedded_pgdata(settings: Settings) -> Path:
    """The embedded server's data folder: `<data_dir>/pgdata`."""
    return settings.data_dir / "pgdata"


def embedded_running(settings: Settings) -> bool:
    """Whether the embedded server of `settings.data_dir` runs (`pg_ctl status`)."""
    pgdata = embedded_pgdata(settings)
    if not (pgdata / "PG_VERSION").exists():
        return False
    done = _pg_ctl(pgdata, ["status"])
    if done.returncode not in (0, PG_CTL_NOT_RUNNING):
        raise DatabaseUnavailable(f"pg_ctl status failed in {pgdata}: {done.stderr.strip()}")
    return done.returncode == 0


def stop_embedded(settings: Settings) -> bool:
    """Stop the embedded server (fast mode: clients are disconnected); False if it was not
    running."""
    pgdata = embedded_pgdata(settings)
    if not embedded_running(settings):
        return False
    done = _pg_ctl(pgdata, ["-w", "-m", "fast", "stop"])
    if done.returncode != 0:
        raise DatabaseUnavailable(f"pg_ctl stop failed in {pgdata}: {done.stderr.strip()}")
    return True


def _pg_ctl(pgdata: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """pgserver's pg_ctl on `pgdata`; as root, run as the `pgserver` user like the server."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from pgserver._commands import POSTGRES_BIN_PATH
    argv = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), *args]
    user = "pgserver" if os.geteuid() == 0 else None
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=PG_CTL_TIMEOUT, user=user, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise DatabaseUnavailable(f"pg_ctl {args[-1]} took more than {PG_CTL_TIMEOUT:g} s") from err


def embedded_database_url(
    settings: Settings, connect: Callable[[str], psycopg.Connection[Any]]
) -> str:
    """Start (or attach to) the embedded server and create database "volfefe" once; its URL."""
    admin_url = _embedded_server_url(settings)
    with connect(admin_url) as conn:
        _create_database_once(conn, EMBEDDED_DBNAME)
        _bound_authentication(conn)
    return make_conninfo(admin_url, dbname=EMBEDDED_DBNAME)


def _embedded_server_url(settings: Settings) -> str:
    """Start (or attach to) the pgserver instance in `<data_dir>/pgdata`; its admin URL."""
    pgdata = settings.data_dir / "pgdata"
    # get_server() makes pgdata with exist_ok=False outside its lock, so two first runs would
    # race there; an existing empty folder is fine for it (and for initdb).
    pgdata.mkdir(parents=True, exist_ok=True)
    url: str = start_embedded(pgdata).get_uri("postgres")
    return url


def start_embedded(pgdata: Path) -> Any:
    """The pgserver instance of `pgdata`, its server started (pgserver's own way, with its
    socket options) if it is not running, also when this process met it running before;
    DatabaseUnavailable when it is not ready within START_TIMEOUT."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; its fallback is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from pgserver.postgres_server import get_server
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            server = get_server(pgdata, cleanup_mode=None)
            server.ensure_postgres_running()  # the instance is cached: it may have stopped
            return server
        except subprocess.TimeoutExpired as err:
            # pgserver gives `pg_ctl start` 10 s; on a loaded machine the server it launched
            # goes on starting after that. Attach to it once it is ready.
            if not wait_until_ready(pgdata, deadline):
                raise DatabaseUnavailable(
                    f"the embedded PostgreSQL in {pgdata} did not start within "
                    f"{START_TIMEOUT:g} s (see {pgdata / 'log'})"
                ) from err
        except (OSError, subprocess.SubprocessError, RuntimeError, AssertionError) as err:
            raise DatabaseUnavailable(
                f"cannot start the embedded PostgreSQL in {pgdata}: {err} (see {pgdata / 'log'})"
            ) from err


def wait_until_ready(pgdata: Path, deadline: float) -> bool:
    """Whether the postmaster of `pgdata` says "ready" (postmaster.pid's last line) before
    `deadline`; False at once when no postmaster is left running.

    Read here, not with pgserver's PostmasterInfo, which insists on a complete file: a
    starting server has not written its last lines yet."""
    while time.monotonic() < deadline:
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
            os.kill(int(lines[0]), 0)
        except (OSError, ValueError, IndexError):
            return False
        if lines[-1].strip() == "ready":
            return True
        time.sleep(START_POLL)  # postgres signals readiness only through this file
    return False


def _bound_authentication(conn: psycopg.Connection[Any]) -> None:
    """Set the server's authentication_timeout to AUTHENTICATION_TIMEOUT whenever it differs
    (ALTER SYSTEM, then a reload: it applies to new connections without a restart)."""
    row = conn.execute(AUTHENTICATION_TIMEOUT_NOW).fetchone()
    if row is not None and row["seconds"] == AUTHENTICATION_TIMEOUT:
        return
    seconds = sql.Literal(f"{AUTHENTICATION_TIMEOUT}s")
    conn.execute(sql.SQL("ALTER SYSTEM SET authentication_timeout = {}").format(seconds))
    conn.execute("SELECT pg_reload_conf()")


def _create_database_once(conn: psycopg.Connection[Any], name: str) -> None:
    """CREATE DATABASE unless it exists; a concurrent creator winning the race is fine."""
    if conn.execute(DATABASE_EXISTS, {"name": name}).fetchone():
        return
    # Another volfefe process may create it between our check and our CREATE; that is fine.
    with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
