"""Read-only views of stored results for people and other tools: export rows and breakdowns.

```
export_rows(conn, filters)       one row per post with its result, oldest first, streamed
breakdown(conn, "day")           sentiment counts per day of publication (None: no date)
breakdown(conn, "model_version") sentiment counts per model_version
```
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from volfefe.result import SENTIMENTS

EXPORT_FIELDS = (
    "content_id",
    "source",
    "external_id",
    "author",
    "published_at",
    "text",
    "url",
    "sentiment",
    "confidence",
    "model_version",
    "classified_at",
)
EXPORT = """
SELECT c.id AS content_id, s.name AS source, c.external_id, c.author, c.published_at, c.text,
       c.url, k.sentiment, k.confidence, k.model_version, k.updated_at AS classified_at
FROM contents AS c
JOIN sources AS s ON s.id = c.source_id
{join} classifications AS k ON k.content_id = c.id
WHERE (%(sentiment)s::text IS NULL OR k.sentiment = %(sentiment)s)
  AND (%(model_version)s::text IS NULL OR k.model_version = %(model_version)s)
  AND (%(min_confidence)s::float8 IS NULL OR k.confidence >= %(min_confidence)s)
  AND (%(since)s::timestamptz IS NULL OR c.published_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR c.published_at < %(until)s)
ORDER BY c.id
"""
GROUPS = {
    # The day is taken in UTC so the same database gives the same days on every machine.
    "day": "(c.published_at AT TIME ZONE 'UTC')::date::text",
    "model_version": "k.model_version",
}
BREAKDOWN = """
SELECT {key} AS key,
       count(*) AS total,
       count(*) FILTER (WHERE k.sentiment = 'positive') AS positive,
       count(*) FILTER (WHERE k.sentiment = 'negative') AS negative,
       count(*) FILTER (WHERE k.sentiment = 'neutral') AS neutral,
       avg(k.confidence) AS mean_confidence
FROM contents AS c
JOIN classifications AS k ON k.content_id = c.id
GROUP BY 1
ORDER BY 1 NULLS LAST
"""


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Which posts `export_rows` yields; None means "any".

    >>> ExportFilter(sentiment="positive").params()["sentiment"]
    'positive'
    """

    sentiment: str | None = None
    model_version: str | None = None
    min_confidence: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    unclassified: bool = False  # also posts without a result (their result fields are None)

    def params(self) -> dict[str, Any]:
        """The query parameters."""
        return {
            "sentiment": self.sentiment,
            "model_version": self.model_version,
            "min_confidence": self.min_confidence,
            "since": self.since,
            "until": self.until,
        }


def export_rows(
    conn: psycopg.Connection[Any], filters: ExportFilter
) -> Generator[dict[str, Any], None, None]:
    """Posts with their results (keys: EXPORT_FIELDS), by id, through a server-side cursor so
    a large table is never held in memory. Result filters leave out unclassified posts."""
    join = "LEFT JOIN" if filters.unclassified else "JOIN"
    query = sql.SQL(EXPORT).format(join=sql.SQL(join))
    with conn.transaction(), conn.cursor(name="volfefe_export", row_factory=dict_row) as cur:
        cur.execute(query, filters.params())
        yield from cur


def breakdown(conn: psycopg.Connection[Any], by: str) -> list[dict[str, Any]]:
    """Counts of classified posts per group (`day` of publication or `model_version`).

    >>> breakdown(conn, "model_version")  # doctest: +SKIP
    [{'key': 'finbert-tone@4556d1', 'total': 3, 'positive': 2, 'negative': 1, 'neutral': 0,
      'mean_confidence': 0.91}]
    """
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}, got {by!r}")
    query = sql.SQL(BREAKDOWN).format(key=sql.SQL(GROUPS[by]))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query).fetchall()
    return [
        {
            "key": row["key"],
            "total": row["total"],
            **{name: row[name] for name in SENTIMENTS},
            "mean_confidence": float(row["mean_confidence"]),
        }
        for row in rows
    ]
