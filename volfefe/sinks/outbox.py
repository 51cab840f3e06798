"""The versions a sink has still to be sent: after its cursor, in cursor order, and only
those no running transaction can still precede (see migration 0008).

```
(written_by, version) > cursor              after what the sink was last sent
written_by < pg_snapshot_xmin(snapshot)     every transaction that could still add a version
                                            sorting before it has ended
ORDER BY written_by, version                the cursor's order
```
A result its filters leave out moves the cursor without being sent (`Row.wanted` False).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from volfefe.sinks.table import Sink

BATCH = 200  # versions read per round trip
# The filters of a sink (NULL: any) are the parameters sentiments, min_confidence, sources.
NEXT = """
SELECT k.id, k.version, k.written_by::text AS written_by, k.sentiment, k.confidence,
       k.model_version, coalesce(k.meta -> 'raw_scores', '{}') AS probabilities,
       k.updated_at AS classified_at, c.id AS post_id, s.name AS source, c.external_id,
       c.author, c.published_at, c.text, c.url,
       (%(sentiments)s::text[] IS NULL OR k.sentiment = ANY(%(sentiments)s::text[]))
       AND (%(min_confidence)s::float8 IS NULL OR k.confidence >= %(min_confidence)s::float8)
       AND (%(sources)s::text[] IS NULL OR s.name = ANY(%(sources)s::text[])) AS wanted
FROM classifications AS k
JOIN contents AS c ON c.id = k.content_id
JOIN sources AS s ON s.id = c.source_id
WHERE (k.written_by, k.version) > (%(xid)s::xid8, %(version)s::bigint)
  AND k.written_by < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY k.written_by, k.version
LIMIT %(limit)s
"""
# Versions committed after the cursor that wait for an older transaction to end.
HELD = """
SELECT EXISTS (
    SELECT 1 FROM classifications AS k
    WHERE (k.written_by, k.version) > (%(xid)s::xid8, %(version)s::bigint)
      AND k.written_by >= pg_snapshot_xmin(pg_current_snapshot())
)
"""
PENDING = """
SELECT count(*) AS pending, extract(epoch FROM now() - min(k.updated_at)) AS lag_s
FROM classifications AS k
JOIN contents AS c ON c.id = k.content_id
JOIN sources AS s ON s.id = c.source_id
WHERE (k.written_by, k.version) > (%(xid)s::xid8, %(version)s::bigint)
  AND (%(sentiments)s::text[] IS NULL OR k.sentiment = ANY(%(sentiments)s::text[]))
  AND (%(min_confidence)s::float8 IS NULL OR k.confidence >= %(min_confidence)s::float8)
  AND (%(sources)s::text[] IS NULL OR s.name = ANY(%(sources)s::text[]))
"""


@dataclass(frozen=True, slots=True)
class Row:
    """One stored version of a classification, with its post; `wanted` by the sink or not."""

    id: int
    version: int
    written_by: str
    sentiment: str
    confidence: float
    model_version: str
    probabilities: dict[str, float]
    classified_at: datetime
    post_id: int
    source: str
    external_id: str
    author: str | None
    published_at: datetime | None
    text: str
    url: str | None
    wanted: bool

    @property
    def cursor(self) -> tuple[str, int]:
        """Where a sink's cursor stands once this version is behind it."""
        return (self.written_by, self.version)


def _params(sink: Sink, **more: Any) -> dict[str, Any]:
    return {
        "xid": sink.cursor_xid,
        "version": sink.cursor_version,
        "sentiments": sink.sentiments,
        "min_confidence": sink.min_confidence,
        "sources": sink.sources,
        **more,
    }


async def next_rows(
    conn: psycopg.AsyncConnection[Any], sink: Sink, limit: int = BATCH
) -> list[Row]:
    """Up to `limit` versions after the sink's cursor that can be sent now, in order."""
    async with conn.cursor(row_factory=class_row(Row)) as cur:
        await cur.execute(NEXT, _params(sink, limit=limit))
        return await cur.fetchall()


async def held_back(conn: psycopg.AsyncConnection[Any], sink: Sink) -> bool:
    """Whether versions after the cursor are stored but wait for an older transaction."""
    cur = await conn.execute(HELD, _params(sink))
    row = await cur.fetchone()
    return bool(row and _first(row))


def pending(conn: psycopg.Connection[Any], sink: Sink) -> tuple[int, float]:
    """The results the sink still has to get, and the age in seconds of the oldest (0: none)."""
    cur = conn.execute(PENDING, _params(sink))
    row = cur.fetchone()
    if row is None:
        return 0, 0.0
    values = list(row.values()) if isinstance(row, dict) else list(row)
    return int(values[0]), float(values[1] or 0.0)


def _first(row: Any) -> Any:
    return next(iter(row.values())) if isinstance(row, dict) else row[0]
