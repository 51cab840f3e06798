"""The sinks table (migration 0008): add, read, pause, remove, and each sink's health.

A change that a delivery process must see at once (added, paused, resumed, removed) also
sends `NOTIFY volfefe_sinks` with the sink's id, in the same transaction.

>>> with connect(url) as conn:                                    # doctest: +SKIP
...     sink = add_sink(conn, SinkSpec.webhook("https://desk.example/hook", secret=None))
...     [s.id for s in list_sinks(conn)]
[1]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from volfefe.errors import SinkNotFound
from volfefe.sinks.definition import SinkSpec

CHANNEL = "volfefe_sinks"
ADD = """
INSERT INTO volfefe_sinks (kind, target, bus_url, secret, sentiments, min_confidence, sources,
                           cursor_xid, cursor_version)
VALUES (%(kind)s, %(target)s, %(bus_url)s, %(secret)s, %(sentiments)s, %(min_confidence)s,
        %(sources)s,
        CASE WHEN %(from_start)s THEN '0'::xid8 ELSE pg_snapshot_xmin(pg_current_snapshot()) END,
        0)
RETURNING id, kind, target, bus_url, secret, sentiments, min_confidence, sources, paused,
       cursor_xid::text AS cursor_xid, cursor_version, delivered, failures,
       consecutive_failures, last_delivery_at, last_error, last_error_at, created_at
"""
GET = """
SELECT id, kind, target, bus_url, secret, sentiments, min_confidence, sources, paused,
       cursor_xid::text AS cursor_xid, cursor_version, delivered, failures,
       consecutive_failures, last_delivery_at, last_error, last_error_at, created_at
FROM volfefe_sinks WHERE id = %(id)s
"""
LIST = """
SELECT id, kind, target, bus_url, secret, sentiments, min_confidence, sources, paused,
       cursor_xid::text AS cursor_xid, cursor_version, delivered, failures,
       consecutive_failures, last_delivery_at, last_error, last_error_at, created_at
FROM volfefe_sinks ORDER BY id
"""
IDS = "SELECT id FROM volfefe_sinks ORDER BY id"
REMOVE = "DELETE FROM volfefe_sinks WHERE id = %(id)s RETURNING id"
SET_PAUSED = """
UPDATE volfefe_sinks SET paused = %(paused)s WHERE id = %(id)s
RETURNING id, kind, target, bus_url, secret, sentiments, min_confidence, sources, paused,
       cursor_xid::text AS cursor_xid, cursor_version, delivered, failures,
       consecutive_failures, last_delivery_at, last_error, last_error_at, created_at
"""
ANNOUNCE = "SELECT pg_notify('volfefe_sinks', %(id)s::text)"
# After a event was taken: the cursor moves on, the failure streak ends.
SENT = """
UPDATE volfefe_sinks
   SET cursor_xid = %(xid)s::xid8, cursor_version = %(version)s,
       delivered = delivered + %(sent)s,
       consecutive_failures = CASE WHEN %(sent)s > 0 THEN 0 ELSE consecutive_failures END,
       last_delivery_at = CASE WHEN %(sent)s > 0 THEN now() ELSE last_delivery_at END
 WHERE id = %(id)s
"""
FAILED = """
UPDATE volfefe_sinks
   SET failures = failures + 1, consecutive_failures = consecutive_failures + 1,
       last_error = %(error)s, last_error_at = now()
 WHERE id = %(id)s
RETURNING consecutive_failures
"""


@dataclass(frozen=True, slots=True)
class Sink:
    """One sink as stored: what it is, its filters, its cursor and its counters."""

    id: int
    kind: str
    target: str
    bus_url: str | None
    secret: str | None
    sentiments: list[str] | None
    min_confidence: float | None
    sources: list[str] | None
    paused: bool
    cursor_xid: str
    cursor_version: int
    delivered: int
    failures: int
    consecutive_failures: int
    last_delivery_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    created_at: datetime

    def state(self, unhealthy_after: int) -> str:
        """paused, unhealthy (`unhealthy_after` failures in a row or more), failing, healthy.

        >>> from datetime import UTC
        >>> t = datetime(2025, 1, 1, tzinfo=UTC)
        >>> Sink(1, "webhook", "https://x", None, None, None, None, None, False, "1", 0, 0, 6,
        ...      6, None, "HTTP 500", t, t).state(5)
        'unhealthy'
        """
        if self.paused:
            return "paused"
        if self.consecutive_failures >= unhealthy_after:
            return "unhealthy"
        return "failing" if self.consecutive_failures else "healthy"

    def describe(self) -> dict[str, Any]:
        """The sink as JSON-ready values, without its secret."""
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "bus_url": self.bus_url,
            "sentiments": self.sentiments,
            "min_confidence": self.min_confidence,
            "sources": self.sources,
            "paused": self.paused,
            "delivered": self.delivered,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "last_delivery_at": _iso(self.last_delivery_at),
            "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at),
            "created_at": _iso(self.created_at),
        }


def add_sink(conn: psycopg.Connection[Any], spec: SinkSpec, *, from_start: bool = False) -> Sink:
    """Store a checked sink; it gets what is stored from now on (`from_start`: every result
    stored so far, too)."""
    spec = spec.checked()
    params = {
        "kind": spec.kind,
        "target": spec.target,
        "bus_url": spec.bus_url,
        "secret": spec.secret,
        "sentiments": list(spec.sentiments) if spec.sentiments else None,
        "min_confidence": spec.min_confidence,
        "sources": list(spec.sources) if spec.sources else None,
        "from_start": from_start,
    }
    with conn.transaction(), conn.cursor(row_factory=class_row(Sink)) as cur:
        sink = cur.execute(ADD, params).fetchone()
        assert sink is not None  # INSERT ... RETURNING gives the row
        cur.execute(ANNOUNCE, {"id": sink.id})
    return sink


def get_sink(conn: psycopg.Connection[Any], sink_id: int) -> Sink:
    """The sink with this id, or SinkNotFound."""
    with conn.cursor(row_factory=class_row(Sink)) as cur:
        sink = cur.execute(GET, {"id": sink_id}).fetchone()
    if sink is None:
        raise SinkNotFound(sink_id)
    return sink


def list_sinks(conn: psycopg.Connection[Any]) -> list[Sink]:
    """Every sink, oldest first."""
    with conn.cursor(row_factory=class_row(Sink)) as cur:
        return cur.execute(LIST).fetchall()


def remove_sink(conn: psycopg.Connection[Any], sink_id: int) -> None:
    """Delete the sink (SinkNotFound when there is none); its delivery task stops."""
    with conn.transaction():
        if conn.execute(REMOVE, {"id": sink_id}).fetchone() is None:
            raise SinkNotFound(sink_id)
        conn.execute(ANNOUNCE, {"id": sink_id})


def set_paused(conn: psycopg.Connection[Any], sink_id: int, paused: bool) -> Sink:
    """Pause (nothing is sent; the cursor waits) or resume the sink."""
    with conn.transaction(), conn.cursor(row_factory=class_row(Sink)) as cur:
        sink = cur.execute(SET_PAUSED, {"id": sink_id, "paused": paused}).fetchone()
        if sink is None:
            raise SinkNotFound(sink_id)
        cur.execute(ANNOUNCE, {"id": sink_id})
    return sink


async def aget_sink(conn: psycopg.AsyncConnection[Any], sink_id: int) -> Sink | None:
    """The sink with this id, or None (it was removed)."""
    async with conn.cursor(row_factory=class_row(Sink)) as cur:
        await cur.execute(GET, {"id": sink_id})
        return await cur.fetchone()


async def asink_ids(conn: psycopg.AsyncConnection[Any]) -> list[int]:
    """The ids of every sink."""
    cur = await conn.execute(IDS)
    return [int(row[0]) for row in await cur.fetchall()]


async def record_sent(
    conn: psycopg.AsyncConnection[Any], sink_id: int, cursor: tuple[str, int], sent: int
) -> None:
    """Move the sink's cursor to `cursor` after `sent` events were taken (0: only results
    its filters leave out were passed)."""
    xid, version = cursor
    params = {"id": sink_id, "xid": xid, "version": version, "sent": sent}
    await conn.execute(SENT, params)


async def record_failure(conn: psycopg.AsyncConnection[Any], sink_id: int, error: str) -> int:
    """Count a failed delivery; the failures in a row now."""
    cur = await conn.execute(FAILED, {"id": sink_id, "error": error[:1000]})
    row = await cur.fetchone()
    return int(row[0]) if row else 0


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
