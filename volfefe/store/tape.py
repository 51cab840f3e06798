"""The signal tape: the newest classifications with their post, for a trader's screen.

```
row      classification id, post id, source, author, text, published_at,
         arrived_at (the post's row was inserted), classified_at (its classification stored),
         latency_s = classified_at - arrived_at, sentiment, confidence, tokens
filters  sentiment, min_confidence, source (exact), author and text (contain, any case);
         after / before: classification ids (the live fetch, the next page)
```
Newest first (by classification id). A reclassified post keeps its classification id, so it
stays where it first landed, with its new result.

>>> TapeFilter(source="truth_social").limit
50
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

TAPE = """
SELECT k.id, k.content_id, s.name AS source, c.author, c.text, c.published_at,
       c.inserted_at AS arrived_at, k.updated_at AS classified_at,
       extract(epoch FROM k.updated_at - c.inserted_at)::double precision AS latency_s,
       k.sentiment, k.confidence, k.model_version, (k.meta ->> 'tokens')::int AS tokens
FROM classifications AS k
JOIN contents AS c ON c.id = k.content_id
JOIN sources AS s ON s.id = c.source_id
WHERE (%(sentiment)s::text IS NULL OR k.sentiment = %(sentiment)s)
  AND (%(min_confidence)s::float8 IS NULL OR k.confidence >= %(min_confidence)s)
  AND (%(source)s::text IS NULL OR s.name = %(source)s)
  AND (%(author)s::text IS NULL OR c.author ILIKE %(author)s)
  AND (%(search)s::text IS NULL OR c.text ILIKE %(search)s)
  AND (%(after)s::bigint IS NULL OR k.id > %(after)s)
  AND (%(before)s::bigint IS NULL OR k.id < %(before)s)
ORDER BY k.id DESC
LIMIT %(limit)s
"""
SOURCES = "SELECT name FROM sources ORDER BY name LIMIT %(limit)s"


@dataclass(frozen=True, slots=True)
class TapeFilter:
    """What `tape` selects; None means no condition. `after` and `before` are
    classification ids (exclusive)."""

    sentiment: str | None = None
    min_confidence: float | None = None
    source: str | None = None
    author: str | None = None
    search: str | None = None
    after: int | None = None
    before: int | None = None
    limit: int = 50


def tape(
    conn: psycopg.Connection[Any], where: TapeFilter
) -> tuple[list[dict[str, Any]], int | None]:
    """The newest classifications that pass `where`, newest first, and the `before` cursor
    of the next (older) page, None at the end."""
    params = {
        "sentiment": where.sentiment,
        "min_confidence": where.min_confidence,
        "source": where.source,
        "author": _contains(where.author),
        "search": _contains(where.search),
        "after": where.after,
        "before": where.before,
        "limit": where.limit + 1,
    }
    rows = [dict(row) for row in conn.execute(TAPE, params)]
    page = rows[: where.limit]
    return page, (page[-1]["id"] if len(rows) > where.limit and page else None)


def source_names(conn: psycopg.Connection[Any], limit: int = 500) -> list[str]:
    """The names of the sources, for the tape's source filter."""
    return [row["name"] for row in conn.execute(SOURCES, {"limit": limit})]


def _contains(text: str | None) -> str | None:
    if not text:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + escaped + "%"
