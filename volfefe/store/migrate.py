"""Forward-only schema migrations from `volfefe/migrations/*.sql`.

```
migrate(conn)
  for each NNNN_name.sql, in name order:
    BEGIN
      pg_advisory_xact_lock(MIGRATION_LOCK)    -- a second process waits here...
      applied already?  -> COMMIT, next file   -- ...and then finds the work done
      run the file; record it in volfefe_schema_migrations
    COMMIT
```

The version of a migration is its file name without `.sql` (for example `0001_content`).

procrastinate's job-queue schema is applied first, the same way: on a new database its whole
schema (recorded as `procrastinate/schema`, with every migration file it ships recorded as
covered); later, any procrastinate migration file not yet recorded (after a procrastinate
upgrade) runs and is recorded as `procrastinate/<file name>`. Our own tables are never copied
from procrastinate's.

>>> [version for version, _ in load_migrations()][:1]
['0001_content']
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from volfefe.errors import SchemaOutdated

MIGRATIONS_PACKAGE = "volfefe.store.migrations"
# Any fixed bigint works; this one spells "volfmig" so it is recognisable in pg_locks.
MIGRATION_LOCK = 0x766F6C666D6967
_NAME = re.compile(r"^(\d{4}_[a-z0-9_]+)\.sql$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS volfefe_schema_migrations (
    version    text        PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
LOCK = "SELECT pg_advisory_xact_lock(%(key)s)"
SESSION_LOCK = "SELECT pg_advisory_lock(%(key)s)"
SESSION_UNLOCK = "SELECT pg_advisory_unlock(%(key)s)"
TABLE_EXISTS = "SELECT to_regclass('volfefe_schema_migrations') IS NOT NULL AS present"
APPLIED = "SELECT version FROM volfefe_schema_migrations"
IS_APPLIED = "SELECT 1 FROM volfefe_schema_migrations WHERE version = %(version)s"
RECORD = "INSERT INTO volfefe_schema_migrations (version) VALUES (%(version)s)"
RECORD_IF_NEW = RECORD + " ON CONFLICT (version) DO NOTHING"
PROCRASTINATE_PRESENT = "SELECT to_regclass('procrastinate_jobs') IS NOT NULL"
PROCRASTINATE = "procrastinate/"
PROCRASTINATE_SCHEMA = PROCRASTINATE + "schema"


def load_migrations() -> list[tuple[str, bytes]]:
    """Every migration shipped with volfefe as `(version, sql)`, oldest first.

    >>> load_migrations()[0][0]
    '0001_content'
    """
    found = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((match.group(1), entry.read_bytes()))
    return sorted(found)


def procrastinate_migrations() -> list[tuple[str, bytes]]:
    """procrastinate's own migration files as `(procrastinate/<name>, sql)`, oldest first."""
    folder = resources.files("procrastinate.sql.migrations")
    files = [e for e in folder.iterdir() if e.name.endswith(".sql")]
    return sorted((PROCRASTINATE + e.name.removesuffix(".sql"), e.read_bytes()) for e in files)


def pending_migrations(conn: psycopg.Connection[Any]) -> list[str]:
    """Versions shipped with this volfefe that the database has not applied yet (read only).

    >>> pending_migrations(conn)  # doctest: +SKIP
    []
    """
    with conn.cursor(row_factory=tuple_row) as cur:
        present = cur.execute(TABLE_EXISTS).fetchone()
        applied = {row[0] for row in cur.execute(APPLIED)} if present and present[0] else set()
    if PROCRASTINATE_SCHEMA not in applied:
        ours = [PROCRASTINATE_SCHEMA]
    else:
        ours = [v for v, _ in procrastinate_migrations() if v not in applied]
    return ours + [version for version, _ in load_migrations() if version not in applied]


def require_current_schema(conn: psycopg.Connection[Any]) -> None:
    """Raise `SchemaOutdated` (with the pending versions) unless every migration is applied.

    >>> require_current_schema(conn)  # doctest: +SKIP
    """
    pending = pending_migrations(conn)
    if pending:
        raise SchemaOutdated(pending)


def migrate(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply the pending migrations, each in its own transaction; return the versions applied now.

    Safe to call from several processes at once: they queue on an advisory lock and each
    migration runs exactly once. The connection must not be inside a transaction.

    >>> migrate(conn)  # doctest: +SKIP
    ['0001_content']
    >>> migrate(conn)  # doctest: +SKIP
    []
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise ValueError("migrate() needs a connection that is not inside a transaction")
    # One run at a time from start to end (each file still in its own transaction), so a
    # second process waits and then finds nothing to do instead of sharing the work.
    with conn.transaction():  # commits at once, also on a connection without autocommit
        conn.execute(SESSION_LOCK, {"key": MIGRATION_LOCK})
    try:
        applied = _apply_procrastinate_schema(conn)
        applied += [v for v, sql in procrastinate_migrations() if _apply(conn, v, sql)]
        return applied + [v for v, sql in load_migrations() if _apply(conn, v, sql)]
    finally:
        with conn.transaction():
            conn.execute(SESSION_UNLOCK, {"key": MIGRATION_LOCK})


def _apply_procrastinate_schema(conn: psycopg.Connection[Any]) -> list[str]:
    """Install procrastinate's whole schema once; its shipped migrations count as applied."""
    from procrastinate.schema import SchemaManager

    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(LOCK, {"key": MIGRATION_LOCK})
        cur.execute(CREATE_TABLE)
        if cur.execute(IS_APPLIED, {"version": PROCRASTINATE_SCHEMA}).fetchone():
            return []
        installed = cur.execute(PROCRASTINATE_PRESENT).fetchone()
        if not (installed and installed[0]):  # else someone installed it: take it as current
            cur.execute(SchemaManager.get_schema())
        for version in [PROCRASTINATE_SCHEMA] + [v for v, _ in procrastinate_migrations()]:
            cur.execute(RECORD_IF_NEW, {"version": version})
    return [PROCRASTINATE_SCHEMA]


def _apply(conn: psycopg.Connection[Any], version: str, sql: bytes) -> bool:
    """Run one migration unless it is already recorded; True when it ran now."""
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(LOCK, {"key": MIGRATION_LOCK})
        # Under the lock, so two first-ever runs cannot race on creating the table.
        cur.execute(CREATE_TABLE)
        if cur.execute(IS_APPLIED, {"version": version}).fetchone():
            return False
        cur.execute(sql)
        cur.execute(RECORD, {"version": version})
    return True
