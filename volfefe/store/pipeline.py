"""How the pipeline did, from the stored rows: the latency from a post's arrival (its
`contents` row was inserted) to its classification (the `classifications` row was last
written), by length class, the classifications per bucket of a time range, and the posts
quarantined in it.

```
length   from meta.tokens, with the bounds the caller gives (supervisor/latency.py's:
         short <= 64 tokens, medium <= 256, long); `unknown` when no token count is stored
range    [since, until), cut in buckets of `step` from `start` (at or before `since`: the
         first bucket may be cut by `since`); a classification belongs to the bucket of its
         classified time
```
A post classified again (reclassify, an edited text) counts once, at its latest result: the
latency then runs from the post's first arrival.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

# Both queries start with the same `done` rows: each classification of the range, its
# latency and its length class.
DONE = sql.SQL("""
WITH done AS (
    SELECT k.updated_at AS at,
           extract(epoch FROM k.updated_at - c.inserted_at)::double precision AS latency,
           CASE WHEN jsonb_typeof(k.meta -> 'tokens') IS DISTINCT FROM 'number' THEN 'unknown'
                WHEN (k.meta ->> 'tokens')::numeric <= %(short)s THEN 'short'
                WHEN (k.meta ->> 'tokens')::numeric <= %(medium)s THEN 'medium'
                ELSE 'long' END AS length
    FROM classifications AS k
    JOIN contents AS c ON c.id = k.content_id
    WHERE k.updated_at >= %(since)s AND k.updated_at < %(until)s
)
""")
BY_LENGTH = DONE + sql.SQL(
    """SELECT coalesce(length, 'all') AS length, count(*) AS classified,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency) AS p50_s,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY latency) AS p99_s,
       max(latency) AS max_s
FROM done
GROUP BY ROLLUP (length)
"""
)
PER_BUCKET = DONE + sql.SQL(
    """, buckets AS (
    SELECT s AS start
    FROM generate_series(
        %(start)s::timestamptz, %(until)s::timestamptz, %(step)s::interval
    ) AS s
    WHERE s < %(until)s
)
SELECT b.start, count(d.at) AS classified,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY d.latency) AS p50_s,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY d.latency) AS p99_s
FROM buckets AS b
LEFT JOIN done AS d ON date_bin(%(step)s::interval, d.at, %(start)s::timestamptz) = b.start
GROUP BY b.start
ORDER BY b.start
"""
)
LENGTHS = ("short", "medium", "long", "unknown")


def latency_by_length(
    conn: psycopg.Connection[Any],
    since: datetime,
    until: datetime,
    *,
    short: int,
    medium: int,
) -> dict[str, dict[str, Any]]:
    """Per length class and `all`: classifications in [since, until), and the p50, p99 and
    max of their latency in seconds (None when there is none). Every class is present."""
    params = {"since": since, "until": until, "short": short, "medium": medium}
    empty = {"classified": 0, "p50_s": None, "p99_s": None, "max_s": None}
    out = {name: dict(empty) for name in (*LENGTHS, "all")}
    for row in conn.execute(BY_LENGTH, params):
        out[row["length"]] = {k: row[k] for k in ("classified", "p50_s", "p99_s", "max_s")}
    return out


def per_bucket(
    conn: psycopg.Connection[Any],
    since: datetime,
    until: datetime,
    start: datetime,
    step: timedelta,
    *,
    short: int,
    medium: int,
) -> list[dict[str, Any]]:
    """Each bucket of `step` from `start` to `until`, oldest first, empty ones included:
    its start, the classifications stored in it (and in [since, until)) and the p50 and p99
    of their latency."""
    params = {
        "since": since,
        "until": until,
        "start": start,
        "step": step,
        "short": short,
        "medium": medium,
    }
    return [dict(row) for row in conn.execute(PER_BUCKET, params)]


QUARANTINED_BETWEEN = """
SELECT count(*) AS n FROM contents
WHERE quarantined_at >= %(since)s AND quarantined_at < %(until)s
"""


def quarantined_between(conn: psycopg.Connection[Any], since: datetime, until: datetime) -> int:
    """Posts put in quarantine in [since, until) (and still there)."""
    row = conn.execute(QUARANTINED_BETWEEN, {"since": since, "until": until}).fetchone()
    return int(row["n"]) if row else 0
