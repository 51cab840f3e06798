"""A fresh database for a suite's run, removed afterwards.

With $DATABASE_URL: a new database on that server, dropped WITH (FORCE) at the end. Without:
a new embedded server in its own VOLFEFE_DATA_DIR under the work folder, stopped and deleted
at the end (volfefe never stops the embedded server it starts, by design).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def fresh_database(workdir: Path, tag: str) -> Iterator[dict[str, str]]:
    """The environment that points volfefe at a fresh, empty database (removed afterwards)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    server = os.environ.get("DATABASE_URL")
    if server:
        name = f"volfefe_bench_{tag}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield {"DATABASE_URL": make_conninfo(server, dbname=name)}
        finally:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        return
    data_dir = workdir / f"data-{tag}"
    try:
        yield {"VOLFEFE_DATA_DIR": str(data_dir)}
    finally:
        stop_embedded(data_dir / "pgdata")
        shutil.rmtree(data_dir, ignore_errors=True)


def stop_embedded(pgdata: Path) -> None:
    """Stop an embedded server volfefe left running."""
    if not (pgdata / "postmaster.pid").exists():
        return
    pgserver = import_pgserver()
    # As root, pgserver runs postgres as the "pgserver" user; pg_ctl refuses to run as root.
    user = "pgserver" if os.geteuid() == 0 else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


def import_pgserver() -> Any:
    """pgserver, whose command functions (pg_ctl, ...) are made at import, so untyped."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
    return pgserver


def database_url(db_env: Mapping[str, str], *, migrate: bool = False) -> str:
    """The URL volfefe uses with this environment (starts the embedded server if need be;
    `migrate` migrates an embedded database on the way, as the CLI does)."""
    from volfefe import Settings
    from volfefe.store.connect import resolve_database_url

    settings = Settings.from_env(db_env, model="unused")
    return resolve_database_url(settings, auto_migrate=migrate)


def described() -> str:
    """Which server the fresh databases are made on, as the reports print it."""
    return "DATABASE_URL server" if os.environ.get("DATABASE_URL") else "embedded"
