"""Read-only views over posts for the HTTP API and the dashboard: filtered pages with a
cursor, one post with everything known about it, the timeline, and recent throughput.

>>> PostFilter(sentiment="positive", min_confidence=0.9).limit
50
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from volfefe.errors import ContentNotFound

BUCKETS = ("hour", "day")
POSTS = """
SELECT c.id, s.name AS source, c.external_id, c.author, c.text, c.url, c.published_at,
       c.inserted_at, c.quarantined_at, c.quarantine_reason,
       k.sentiment, k.confidence, k.model_version, k.meta, k.updated_at AS classified_at
FROM contents AS c
JOIN sources AS s ON s.id = c.source_id
LEFT JOIN classifications AS k ON k.content_id = c.id
WHERE {where}
ORDER BY c.id DESC
LIMIT %(limit)s
"""
POST_JOBS = """
SELECT j.id, j.status::text AS status, j.attempts, j.scheduled_at,
       (SELECT max(e.at) FROM procrastinate_events e
        WHERE e.job_id = j.id AND e.type <> 'scheduled') AS updated_at
FROM procrastinate_jobs AS j
WHERE j.task_name = 'volfefe.classify_post' AND (j.args ->> 'content_id')::bigint = %(id)s
ORDER BY j.id
"""
POST_ATTEMPTS = """
SELECT job_id, attempt, outcome, error_type, message, at
FROM volfefe_job_attempts WHERE content_id = %(id)s ORDER BY at, id
"""
TIMELINE = """
SELECT date_trunc(%(bucket)s, c.published_at, 'UTC') AS bucket,
       count(*) FILTER (WHERE k.sentiment = 'positive') AS positive,
       count(*) FILTER (WHERE k.sentiment = 'negative') AS negative,
       count(*) FILTER (WHERE k.sentiment = 'neutral') AS neutral,
       avg(k.confidence) AS mean_confidence
FROM contents AS c
JOIN classifications AS k ON k.content_id = c.id
WHERE c.published_at IS NOT NULL
  AND (%(since)s::timestamptz IS NULL OR c.published_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR c.published_at < %(until)s)
GROUP BY 1
ORDER BY 1 DESC
LIMIT %(limit)s
"""
THROUGHPUT = """
SELECT count(*) AS n FROM classifications WHERE updated_at > now() - %(window)s::interval
"""
QUARANTINED = "SELECT count(*) AS n FROM contents WHERE quarantined_at IS NOT NULL"
RECENT = """
SELECT k.id, k.content_id, k.sentiment, k.confidence, k.model_version,
       k.updated_at AS classified_at, left(c.text, 200) AS text
FROM classifications AS k JOIN contents AS c ON c.id = k.content_id
WHERE k.id > %(after)s
ORDER BY k.id {order}
LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class PostFilter:
    """What `list_posts` selects: each field narrows the page (None = no condition).

    `before` is the cursor: only posts with a smaller id (pages go newest first).
    """

    sentiment: str | None = None
    min_confidence: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None
    quarantined: bool | None = None
    before: int | None = None
    limit: int = 50


def list_posts(
    conn: psycopg.Connection[Any], where: PostFilter
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of posts, newest first, and the cursor of the next page (None at the end)."""
    conditions = [sql.SQL("true")]
    params: dict[str, Any] = {"limit": where.limit + 1}
    if where.sentiment is not None:
        conditions.append(sql.SQL("k.sentiment = %(sentiment)s"))
        params["sentiment"] = where.sentiment
    if where.min_confidence is not None:
        conditions.append(sql.SQL("k.confidence >= %(min_confidence)s"))
        params["min_confidence"] = where.min_confidence
    if where.since is not None:
        conditions.append(sql.SQL("c.published_at >= %(since)s"))
        params["since"] = where.since
    if where.until is not None:
        conditions.append(sql.SQL("c.published_at < %(until)s"))
        params["until"] = where.until
    if where.search:
        conditions.append(sql.SQL("c.text ILIKE %(search)s"))
        params["search"] = "%" + _escape_like(where.search) + "%"
    if where.before is not None:
        conditions.append(sql.SQL("c.id < %(before)s"))
        params["before"] = where.before
    if where.quarantined is not None:
        test = "IS NOT NULL" if where.quarantined else "IS NULL"
        conditions.append(sql.SQL("c.quarantined_at " + test))
    query = sql.SQL(POSTS).format(where=sql.SQL(" AND ").join(conditions))
    rows = [dict(row) for row in conn.execute(query, params)]
    more = len(rows) > where.limit
    page = rows[: where.limit]
    return page, (page[-1]["id"] if more and page else None)


def get_post(conn: psycopg.Connection[Any], content_id: int) -> dict[str, Any]:
    """One post with its classification, its jobs and every attempt; ContentNotFound if none."""
    query = sql.SQL(POSTS).format(where=sql.SQL("c.id = %(id)s"))
    row = conn.execute(query, {"id": content_id, "limit": 1}).fetchone()
    if row is None:
        raise ContentNotFound(content_id)
    post = dict(row)
    post["jobs"] = [dict(r) for r in conn.execute(POST_JOBS, {"id": content_id})]
    post["attempts"] = [dict(r) for r in conn.execute(POST_ATTEMPTS, {"id": content_id})]
    return post


def timeline(
    conn: psycopg.Connection[Any],
    bucket: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Posts per sentiment and mean confidence per hour or day of `published_at` (UTC),
    oldest first; at most the latest `limit` buckets that have posts."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, got {bucket!r}")
    params = {"bucket": bucket, "since": since, "until": until, "limit": limit}
    return [dict(row) for row in reversed(conn.execute(TIMELINE, params).fetchall())]


def classified_within(conn: psycopg.Connection[Any], seconds: float) -> int:
    """How many classifications were stored (or replaced) in the last `seconds`."""
    row = conn.execute(THROUGHPUT, {"window": f"{seconds} seconds"}).fetchone()
    return int(_first(row)) if row else 0


def quarantined_count(conn: psycopg.Connection[Any]) -> int:
    """Posts in quarantine."""
    row = conn.execute(QUARANTINED).fetchone()
    return int(_first(row)) if row else 0


def recent_classifications(
    conn: psycopg.Connection[Any], *, after: int = 0, limit: int = 20, oldest_first: bool = False
) -> list[dict[str, Any]]:
    """Classifications with an id above `after` (the SSE cursor), with the start of the text."""
    query = sql.SQL(RECENT).format(order=sql.SQL("ASC" if oldest_first else "DESC"))
    return [dict(row) for row in conn.execute(query, {"after": after, "limit": limit})]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _first(row: Any) -> Any:
    return next(iter(row.values())) if isinstance(row, dict) else row[0]
