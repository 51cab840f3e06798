"""A fresh database per row, and the untimed preparation before a CLI row (the children's
model made once, the schema migrated, the corpus imported)."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from .common import volfefe
from .corpus import write_posts
from .results import Plan


@contextlib.contextmanager
def fresh_database(plan: Plan, tag: str) -> Iterator[dict[str, str]]:
    """Environment for the CLI pointing at a fresh, empty database (removed afterwards).

    With $DATABASE_URL: a new database on that server, dropped WITH (FORCE) at the end.
    Without: a new embedded server in its own VOLFEFE_DATA_DIR, stopped and deleted at the end.
    """
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
    data_dir = plan.workdir / f"data-{tag}"
    try:
        yield {"VOLFEFE_DATA_DIR": str(data_dir)}
    finally:
        stop_embedded(data_dir / "pgdata")
        shutil.rmtree(data_dir, ignore_errors=True)


def stop_embedded(pgdata: Path) -> None:
    """Stop an embedded server volfefe left running (it never stops its own, by design)."""
    if not (pgdata / "postmaster.pid").exists():
        return
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
    # As root, pgserver runs postgres as the "pgserver" user; pg_ctl refuses to run as root.
    user = "pgserver" if os.geteuid() == 0 else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


def database_url(db_env: Mapping[str, str]) -> str:
    """The URL the CLI uses with this environment (attaches to the embedded server)."""
    from volfefe import Settings
    from volfefe.store.connect import resolve_database_url

    settings = Settings.from_env(db_env, model="unused")
    return resolve_database_url(settings, auto_migrate=False)


def prepare_model(plan: Plan, env: Mapping[str, str]) -> float:
    """Seconds of one untimed `volfefe predict`: it makes whatever the children load once
    (with the ONNX backend, the cached export for this quantisation), so a row measures the
    steady state rather than a one-time export."""
    started = time.monotonic()
    volfefe(["predict", "Stocks rally as the trade deal is signed"], env, plan.timeout)
    return round(time.monotonic() - started, 3)


def prepare_database(plan: Plan, texts: list[str], env: Mapping[str, str], tag: str) -> None:
    """Create/migrate the schema and import the corpus."""
    volfefe(["db", "migrate"], env, plan.timeout)
    posts = write_posts(plan.workdir / f"posts-{tag}.jsonl", texts, tag)
    out = volfefe(["import", str(posts)], env, plan.timeout)
    if f"inserted {len(texts)}," not in out:
        raise RuntimeError(f"import did not insert {len(texts)} posts: {out.strip()}")
