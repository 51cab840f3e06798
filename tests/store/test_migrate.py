"""Migrations on real PostgreSQL: once, idempotent, and safe from two connections at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from volfefe.errors import SchemaOutdated
from volfefe.store.connect import connect
from volfefe.store.migrate import (
    load_migrations,
    migrate,
    pending_migrations,
    require_current_schema,
)

pytestmark = pytest.mark.both_backends  # the schema must come out the same on both servers

VERSIONS = ["procrastinate/schema"] + [version for version, _ in load_migrations()]
# procrastinate's own migration files are recorded too (as covered by its schema): leave
# them out where the tests compare with VERSIONS.
RECORDED = """
SELECT version, applied_at FROM volfefe_schema_migrations
WHERE version NOT LIKE 'procrastinate/0%' ORDER BY version = 'procrastinate/schema' DESC, version
"""


def test_migrations_are_numbered_and_ordered() -> None:
    assert VERSIONS[1] == "0001_content"
    assert sorted(VERSIONS[1:]) == VERSIONS[1:]  # procrastinate's schema comes first
    assert all(sql.strip() for _, sql in load_migrations())


def test_migrate_applies_once_then_nothing(empty_database_url: str) -> None:
    with connect(empty_database_url) as conn:
        assert pending_migrations(conn) == VERSIONS
        with pytest.raises(SchemaOutdated, match="db migrate") as caught:
            require_current_schema(conn)
        assert caught.value.pending == VERSIONS

        assert migrate(conn) == VERSIONS
        assert migrate(conn) == []

        assert pending_migrations(conn) == []
        require_current_schema(conn)
        rows = conn.execute(RECORDED).fetchall()
        assert [row["version"] for row in rows] == VERSIONS
        assert all(row["applied_at"] is not None for row in rows)


def test_concurrent_migrations_apply_each_file_once(empty_database_url: str) -> None:
    start = threading.Barrier(2, timeout=10)

    def run() -> list[str]:
        with connect(empty_database_url) as conn:
            start.wait()
            return migrate(conn)

    with ThreadPoolExecutor(2) as pool:
        results = [f.result(timeout=30) for f in [pool.submit(run), pool.submit(run)]]

    assert sorted(results) == [[], VERSIONS]
    with connect(empty_database_url) as conn:
        count = conn.execute(f"SELECT count(*) AS n FROM ({RECORDED}) r").fetchone()
        assert count == {"n": len(VERSIONS)}


def test_the_test_database_is_already_current(database_url: str) -> None:
    with connect(database_url) as conn:
        assert pending_migrations(conn) == []
        assert migrate(conn) == []


def test_migrate_refuses_a_connection_inside_a_transaction(database_url: str) -> None:
    with connect(database_url, autocommit=False) as conn:
        conn.execute("SELECT 1")
        with pytest.raises(ValueError, match="not inside a transaction"):
            migrate(conn)
