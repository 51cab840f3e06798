"""The body of one `volfefe.classify_post` job, on the worker's event loop.

```
load the post                      1 statement, shared with the other jobs loading at the
                                   same moment (volfefe.classify.coalesce)
await classifier.aclassify(text)   no thread and no connection held while the child computes,
                                   so a worker keeps many jobs in flight and the pool's
                                   dynamic batching fills the children's batches; a pool
                                   being rebuilt is waited for (PoolBroken is not the post's)
store + mark + attempt record      1 statement, 1 transaction, shared with the other jobs
                                   storing at the same moment; its commit sends NOTIFY
                                   volfefe_classified per result (migration 0003)
```

procrastinate adds one round trip to fetch the job and one to finish it.

The connections it uses: `volfefe.jobs.connections`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg_pool import AsyncConnectionPool

from volfefe.classify.coalesce import Coalescer, StoreRequest
from volfefe.classify.intelligence import precheck
from volfefe.errors import PoisonText, PoolBroken
from volfefe.result import Classification
from volfefe.store.quarantine import QUARANTINE, short_reason
from volfefe.supervisor.classifier import Classifier


async def classify_post_job(
    db: AsyncConnectionPool[Any],
    coalescer: Coalescer,
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
    classifier's errors (a `PoisonText` quarantines the post first), ContentNotFound when the
    post was deleted meanwhile, and the database's error for a result it refuses; for those
    the caller records the attempt.
    """
    row = await coalescer.load(content_id)
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
    request = StoreRequest(job_id, attempt, content_id, result)
    return await coalescer.store(request)


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
