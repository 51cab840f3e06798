"""The body of one `volfefe.classify_post` job, on the worker's event loop.

```
load the post                      1 round trip (pool connection, released at once)
await classifier.aclassify(text)   no thread and no connection held while the child computes,
                                   so a worker keeps many jobs in flight and the pool's
                                   dynamic batching fills the children's batches; a pool
                                   being rebuilt is waited for (PoolBroken is not the post's)
store + mark + attempt record      1 statement = 1 round trip, 1 transaction; its commit
                                   sends NOTIFY volfefe_classified (migration 0003)
```

procrastinate adds one round trip to fetch the job and one to finish it.

The connections it uses: `volfefe.jobs.connections`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from volfefe.classify.intelligence import precheck
from volfefe.errors import ContentNotFound, PoisonText, PoolBroken
from volfefe.result import Classification
from volfefe.store.posts import CONTENTS_BY_IDS, ContentRow
from volfefe.store.quarantine import QUARANTINE, short_reason
from volfefe.supervisor.classifier import Classifier

# The result, the `classified` flag and the attempt record in one statement: one commit.
STORE = """
WITH stored AS (
    INSERT INTO classifications (content_id, sentiment, confidence, model_version, meta)
    VALUES (%(content_id)s, %(sentiment)s, %(confidence)s, %(model_version)s, %(meta)s)
    ON CONFLICT (content_id) DO NOTHING
    RETURNING id
), marked AS (
    -- a stored result also lifts a quarantine (a forced try succeeded)
    UPDATE contents SET classified = true, quarantined_at = NULL, quarantine_reason = NULL
    WHERE id = %(content_id)s AND EXISTS (SELECT 1 FROM stored)
), attempt AS (
    INSERT INTO volfefe_job_attempts (job_id, content_id, attempt, outcome)
    SELECT %(job_id)s, %(content_id)s, %(attempt)s,
           CASE WHEN EXISTS (SELECT 1 FROM stored) THEN 'classified' ELSE 'already_classified' END
)
SELECT (SELECT id FROM stored) AS classification_id
"""


async def classify_post_job(
    db: AsyncConnectionPool[Any],
    classifier: Classifier,
    *,
    job_id: int,
    attempt: int,
    content_id: int,
) -> bool:
    """Classify post `content_id` and store the result with this attempt's record.

    Returns True when this job stored the result, False when another writer stored one
    first (recorded as `already_classified`). Raises ContentNotFound, NoTextError or
    AlreadyClassified before classifying when the post cannot be classified now, and the
    classifier's errors (a `PoisonText` quarantines the post first); for those the caller
    records the attempt.
    """
    async with db.connection() as conn, conn.cursor(row_factory=class_row(ContentRow)) as cur:
        await cur.execute(CONTENTS_BY_IDS, {"ids": [content_id]})
        row = await cur.fetchone()
    refusal = precheck(content_id, row)
    if refusal is not None:
        raise refusal
    assert row is not None
    try:
        result = await _classify_through_rebuilds(classifier, row.text)
    except PoisonText as exc:
        async with db.connection() as conn:
            await conn.execute(
                QUARANTINE, {"content_id": content_id, "reason": short_reason(exc.reason)}
            )
        raise
    params = {
        "content_id": content_id,
        "sentiment": result.sentiment,
        "confidence": result.confidence,
        "model_version": result.model_version,
        "meta": Jsonb(result.meta()),
        "job_id": job_id,
        "attempt": attempt,
    }
    try:
        async with db.connection() as conn:
            stored = await (await conn.execute(STORE, params)).fetchone()
    except psycopg.errors.ForeignKeyViolation as err:
        raise ContentNotFound(content_id) from err
    return stored is not None and _first(stored) is not None


async def _classify_through_rebuilds(classifier: Classifier, text: str) -> Classification:
    """Classify `text`; while the pool is being rebuilt (PoolBroken: the worker's state, not
    this post's), wait for the rebuild and try again, so the attempt is not spent on it. Gives
    up with PoolBroken once no pool took the text for a whole rebuild's bound (the backoff's
    cap plus a boot), when the job worker is about to exit anyway."""
    settings = classifier.settings
    bound = settings.rebuild_backoff_max + settings.boot_timeout
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while True:
        try:
            return await classifier.aclassify(text)
        except PoolBroken:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise
            await classifier.await_rebuilt(remaining)


def _first(row: Any) -> Any:
    return next(iter(row.values())) if isinstance(row, dict) else row[0]
