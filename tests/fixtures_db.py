"""Database fixtures: a fresh PostgreSQL database per test, on the backend in use.

```
backend "embedded"  pgserver in a temporary folder, one per session (always available)
backend "server"    the server of $DATABASE_URL (tests skip when it is unset)

A database test runs once, on the server of $DATABASE_URL when it is set, else on the
embedded one; a test marked `both_backends` (a small set: migrations, import, the store)
runs on each.

per session and backend:  CREATE DATABASE volfefe_tpl_<random>; migrate it
per test:                 CREATE DATABASE volfefe_test_<random> TEMPLATE volfefe_tpl_<random>
                          ... test ...
                          DROP DATABASE ... WITH (FORCE)
```

Names are random so concurrent test sessions can share one server. Every test that uses
`database_url` or another fixture of `DB_FIXTURES` (directly or not) is marked `db`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from volfefe.config import Settings
from volfefe.store.connect import connect
from volfefe.store.migrate import migrate
from volfefe.store.switches import set_auto_enqueue

BACKENDS = ("embedded", "server")


def backends_in_use() -> tuple[str, ...]:
    """Where database tests run: the $DATABASE_URL server when it is set, else embedded."""
    return ("server",) if os.environ.get("DATABASE_URL") else ("embedded",)


DB_FIXTURES = frozenset({"database_url", "empty_database_url", "embedded_server_url", "server_url"})
# Durability is pointless for a throw-away test server, and fsync dominates CREATE DATABASE.
_FAST_SETTINGS = (("fsync", "off"), ("synchronous_commit", "off"), ("full_page_writes", "off"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give each database test its backends: the one in use, or both (`both_backends`)."""
    both = metafunc.definition.get_closest_marker("both_backends") is not None
    for name in ("database_url", "empty_database_url"):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, BACKENDS if both else backends_in_use(), indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a database with `db`, so `-m "not db"` leaves them out."""
    for item in items:
        if DB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


def import_pgserver() -> Any:
    """The pgserver module (platformdirs warns at its import when XDG_RUNTIME_DIR is unset)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
    return pgserver


def stop_embedded(pgdata: Path) -> None:
    """Stop a pgserver instance that volfefe left running (it never stops its own)."""
    if not (pgdata / "postmaster.pid").exists():
        return
    pgserver = import_pgserver()
    # As root, pgserver runs postgres as the "pgserver" user, and pg_ctl refuses to run as root.
    user = "pgserver" if os.geteuid() == 0 else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


@pytest.fixture(scope="session")
def embedded_server_url() -> Iterator[str]:
    """Admin URL of a pgserver instance private to this session; stopped and deleted at the end."""
    # Not under pytest's basetemp: a concurrent pytest run chmods that back to 0700, which
    # would lock out the postgres process (it runs as another user when we are root).
    folder = Path(tempfile.mkdtemp(prefix="volfefe-test-pg-"))
    server = import_pgserver().get_server(folder / "pgdata", cleanup_mode="delete")
    try:
        url = str(server.get_uri("postgres"))
        with psycopg.connect(url, autocommit=True) as conn:
            for name, value in _FAST_SETTINGS:
                conn.execute(
                    sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(value)
                    )
                )
            conn.execute("SELECT pg_reload_conf()")
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def server_url() -> str:
    """Admin URL of the server named by $DATABASE_URL; skips the test when it is unset."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.skip("DATABASE_URL is not set")
    return url


@contextlib.contextmanager
def fresh_database(admin_url: str, template: str | None = None) -> Iterator[str]:
    """Create a database with a random name (from `template` if given); drop it afterwards."""
    name = f"volfefe_test_{uuid.uuid4().hex[:12]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(create)
    try:
        yield make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def _template(admin_url: str) -> Iterator[tuple[str, str]]:
    """A migrated template database on this server: (admin URL, template name)."""
    with fresh_database(admin_url) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
            # Tests queue their jobs explicitly and count them; the tests of the triggers
            # (tests/realtime) turn auto-enqueue on in their own database.
            set_auto_enqueue(conn, False)
        yield admin_url, psycopg.conninfo.conninfo_to_dict(url)["dbname"]


@pytest.fixture(scope="session")
def embedded_template(embedded_server_url: str) -> Iterator[tuple[str, str]]:
    """The migrated template on the embedded server."""
    with _template(embedded_server_url) as template:
        yield template


@pytest.fixture(scope="session")
def server_template(server_url: str) -> Iterator[tuple[str, str]]:
    """The migrated template on the $DATABASE_URL server."""
    with _template(server_url) as template:
        yield template


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a fresh, fully migrated database of its own for this test."""
    admin_url, template = request.getfixturevalue(f"{request.param}_template")
    with fresh_database(admin_url, template) as url:
        yield url


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a fresh database with no volfefe tables (for migration tests)."""
    # Through the template fixture, so the test gets marked `db` and skipped like the others.
    admin_url, _ = request.getfixturevalue(f"{request.param}_template")
    with fresh_database(admin_url) as url:
        yield url


@pytest.fixture
def db_conn(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit, dict-row connection to this test's database."""
    with connect(database_url) as conn:
        yield conn


@pytest.fixture
def settings_for_db(database_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at this test's database (and a private data folder)."""
    return Settings(database_url=database_url, data_dir=tmp_path / "data")
