"""The sentiment index: per time bucket, the confidence-weighted net sentiment of the
classified posts published in it, and how many there were.

```
index(bucket) = sum(confidence * s) / posts     s = +1 positive, -1 negative, 0 neutral
```
over the classified posts with `since <= published_at < until` in the bucket (posts without
a publication date, or not classified yet, are not counted). It lies in [-1, 1]: +1 when
every post is positive with confidence 1, 0 for a balanced or all-neutral bucket, and it
is None for a bucket without posts, which is still listed with `posts` 0 so gaps show.

Buckets start at `start`, `start + bucket`, ... while before `until`; PostgreSQL bins the
posts (`date_bin` with `start` as origin) and `generate_series` lists every bucket.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

INDEX = """
WITH buckets AS (
    SELECT generate_series(%(start)s::timestamptz,
                           %(until)s::timestamptz - interval '1 microsecond',
                           %(bucket)s::interval) AS start
), counted AS (
    SELECT date_bin(%(bucket)s::interval, c.published_at, %(start)s::timestamptz) AS start,
           count(*) AS posts,
           count(*) FILTER (WHERE k.sentiment = 'positive') AS positive,
           count(*) FILTER (WHERE k.sentiment = 'negative') AS negative,
           count(*) FILTER (WHERE k.sentiment = 'neutral') AS neutral,
           sum(k.confidence * CASE k.sentiment WHEN 'positive' THEN 1
                                               WHEN 'negative' THEN -1 ELSE 0 END) AS weighted,
           avg(k.confidence) AS mean_confidence
    FROM contents AS c
    JOIN classifications AS k ON k.content_id = c.id
    JOIN sources AS s ON s.id = c.source_id
    WHERE c.published_at >= %(since)s::timestamptz
      AND c.published_at < %(until)s::timestamptz
      AND (%(source)s::text IS NULL OR s.name = %(source)s::text)
    GROUP BY 1
)
SELECT b.start,
       coalesce(n.posts, 0) AS posts,
       n.weighted / nullif(n.posts, 0) AS index,
       coalesce(n.positive, 0) AS positive,
       coalesce(n.negative, 0) AS negative,
       coalesce(n.neutral, 0) AS neutral,
       n.mean_confidence
FROM buckets AS b
LEFT JOIN counted AS n ON n.start = b.start
ORDER BY b.start
"""


def sentiment_index(
    conn: psycopg.Connection[Any],
    *,
    start: datetime,
    since: datetime,
    until: datetime,
    bucket: timedelta,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """One row per bucket, oldest first: `start`, `posts`, `index` (None when no post),
    `positive`, `negative`, `neutral` and `mean_confidence` (None when no post).

    `start` is the first bucket's start, at or before `since`; only posts of `source` (its
    name) when given. The caller bounds the number of buckets.
    """
    query = {
        "start": start,
        "since": since,
        "until": until,
        "bucket": bucket,
        "source": source,
    }
    return [dict(row) for row in conn.execute(INDEX, query)]
