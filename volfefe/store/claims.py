"""Claims: which process classifies which post right now (session advisory locks).

Two `volfefe classify` runs on one database each claim a batch before classifying it, so
they split the work instead of both computing every post. A claim is a session-level
advisory lock: it needs no open transaction while the model computes, and it vanishes with
the connection when a process dies. The unique constraint on classifications stays the
final guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

# Lock what is still unclassified (MATERIALIZED: filter first, then lock only those rows).
CLAIM = """
WITH candidates AS MATERIALIZED (
    SELECT id FROM contents
    WHERE id = ANY(%(ids)s) AND NOT classified
)
SELECT id FROM candidates
WHERE pg_try_advisory_lock(hashtextextended('volfefe.classify:' || id::text, 0))
"""
# A post classified (and released) by another run between our check and our lock.
CLASSIFIED_MEANWHILE = "SELECT id FROM contents WHERE id = ANY(%(ids)s) AND classified"
RELEASE = """
SELECT pg_advisory_unlock(hashtextextended('volfefe.classify:' || id::text, 0))
FROM unnest(%(ids)s::bigint[]) AS id
"""


def claim(conn: psycopg.Connection[Any], ids: Sequence[int]) -> set[int]:
    """Claim the unclassified posts among `ids` that no other session holds; return them."""
    if not ids:
        return set()
    held = {row["id"] for row in conn.execute(CLAIM, {"ids": list(ids)})}
    if held:
        done = {row["id"] for row in conn.execute(CLASSIFIED_MEANWHILE, {"ids": list(held)})}
        release(conn, done)
        held -= done
    return held


def release(conn: psycopg.Connection[Any], ids: Sequence[int] | set[int]) -> None:
    """Give up claims taken by `claim` on this connection."""
    if ids:
        conn.execute(RELEASE, {"ids": list(ids)})
