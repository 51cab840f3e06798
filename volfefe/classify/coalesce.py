"""The loads and stores of a job worker's concurrent jobs, coalesced: one statement per turn.

```
job 1 ─ load(7) ──┐                          job 1 ─ store(7, result) ──┐
job 2 ─ load(9) ──┼─ SELECT ... = ANY(...)    job 2 ─ store(9, result) ──┼─ INSERT ... unnest(...)
job 3 ─ load(12) ─┘  each job gets its row    job 3 ─ store(12, result) ─┘ each job its outcome
```

Each kind (loads, stores) is a lane with one statement in flight at a time: what jobs ask for
in the same turn of the event loop, or while that statement runs, goes into the next one, as
a database's group commit does. An idle worker so waits for nothing, and a busy one sends one
statement where it sent one per job. Each post keeps its own procrastinate job, attempts and
outcome: a post missing at its load or store ends only its job (ContentNotFound); a row the
database refuses (a constraint) fails the whole statement, which then runs again one row at a
time, so only that row's job gets the error. An error of the statement as such (connection
lost, deadline) is every job's in it: transient, each job is retried. A store keeps the
single-row statement's semantics: `ON CONFLICT DO NOTHING` (another writer's result wins, the
attempt is `already_classified`), the post marked classified and out of quarantine, one
attempt record per job, NOTIFY per stored row (migration 0003) and the settling of waiting jobs
(migration 0007, once per statement) in the statement's one transaction.

`VOLFEFE_JOBS_COALESCE=off` sends one statement per job (the same statements, one row each).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from volfefe.errors import ContentNotFound
from volfefe.result import Classification
from volfefe.store.posts import CONTENTS_BY_IDS, ContentRow

MAX_ROWS = 500  # rows per statement at most: a worker with more jobs in flight sends several

# One job's result, the `classified` flag and the attempt record in one statement: one commit.
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
# STORE for many jobs (each post at most once): a post deleted meanwhile gets no result and
# no attempt record (`found` false: its job fails with ContentNotFound, as STORE's foreign key
# error does), without failing the statement.
STORE_MANY = """
WITH given AS (
    SELECT * FROM unnest(
        %(content_ids)s::bigint[], %(sentiments)s::text[],
        %(confidences)s::double precision[], %(model_versions)s::text[], %(metas)s::jsonb[],
        %(job_ids)s::bigint[], %(attempts)s::integer[]
    ) WITH ORDINALITY
      AS g(content_id, sentiment, confidence, model_version, meta, job_id, attempt, position)
), stored AS (
    INSERT INTO classifications (content_id, sentiment, confidence, model_version, meta)
    SELECT g.content_id, g.sentiment, g.confidence, g.model_version, g.meta
    FROM given AS g JOIN contents AS c ON c.id = g.content_id
    ORDER BY g.position
    ON CONFLICT (content_id) DO NOTHING
    RETURNING id, content_id
), marked AS (
    -- a stored result also lifts a quarantine (a forced try succeeded)
    UPDATE contents SET classified = true, quarantined_at = NULL, quarantine_reason = NULL
    FROM stored WHERE contents.id = stored.content_id
), outcomes AS (
    SELECT g.position, g.job_id, g.content_id, g.attempt, s.id AS classification_id,
           s.id IS NOT NULL OR EXISTS (SELECT 1 FROM contents AS c WHERE c.id = g.content_id)
               AS found
    FROM given AS g LEFT JOIN stored AS s ON s.content_id = g.content_id
), attempt AS (
    INSERT INTO volfefe_job_attempts (job_id, content_id, attempt, outcome)
    SELECT o.job_id, o.content_id, o.attempt,
           CASE WHEN o.classification_id IS NOT NULL THEN 'classified'
                ELSE 'already_classified' END
    FROM outcomes AS o WHERE o.found
    ORDER BY o.position
)
SELECT position, classification_id, found FROM outcomes ORDER BY position
"""

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """One job's result to store, with the attempt it records.

    >>> StoreRequest(5, 1, 42, Classification("neutral", 0.6, "m@1")).content_id
    42
    """

    job_id: int
    attempt: int
    content_id: int
    result: Classification


@dataclass(slots=True)
class Counts:
    """Rows asked for and statements sent, since the coalescer was made.

    >>> str(Counts(rows=40, statements=3))
    '40 in 3 statements'
    """

    rows: int = 0
    statements: int = 0

    def __str__(self) -> str:
        return f"{self.rows} in {self.statements} statement{'' if self.statements == 1 else 's'}"


class _Lane(Generic[T, R]):
    """Items from many tasks, run by `run` in batches, one batch in flight at a time.

    `run` gives one outcome per item, in order: a value, or an exception for that item's task
    alone; an exception `run` raises goes to every task of the batch. With `key`, a batch holds
    at most one item per key (the others wait for the next one).
    """

    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Sequence[R | Exception]]],
        key: Callable[[T], object] | None = None,
    ) -> None:
        self._run = run
        self._key = key
        self._waiting: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Queue `item` for the next batch and wait for its outcome."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if self._drainer is None:
            # A task starts on the loop's next turn: what else arrives in this one joins in.
            self._drainer = loop.create_task(self._drain())
        return await future

    async def wait_idle(self) -> None:
        """Wait until no batch is queued or running."""
        while (drainer := self._drainer) is not None:
            await asyncio.wait([drainer])

    async def _drain(self) -> None:
        try:
            while batch := self._take():
                try:
                    outcomes = await self._run([item for item, _ in batch])
                except Exception as exc:  # the statement's, so every job's in it
                    outcomes = [exc] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # its job was cancelled meanwhile
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._drainer = None
            while self._waiting:  # only when cancelled: nothing will run these any more
                self._waiting.popleft()[1].cancel()

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        later: list[tuple[T, asyncio.Future[R]]] = []
        keys: set[object] = set()
        while self._waiting and len(batch) < MAX_ROWS:
            item, future = self._waiting.popleft()
            if future.done():  # its job was cancelled while it waited
                continue
            if self._key is not None:
                key = self._key(item)
                if key in keys:
                    later.append((item, future))
                    continue
                keys.add(key)
            batch.append((item, future))
        self._waiting.extendleft(reversed(later))
        return batch


class Coalescer:
    """The loads and stores of one job worker's jobs, coalesced across its concurrent jobs
    (or, with `coalesce=False`, one statement per job); `loads` and `stores` count them.

    >>> coalescer = Coalescer(pool)                                     # doctest: +SKIP
    >>> row = await coalescer.load(42)                                  # doctest: +SKIP
    >>> await coalescer.store(StoreRequest(job_id, 1, 42, result))      # doctest: +SKIP
    True
    """

    def __init__(self, db: AsyncConnectionPool[Any], *, coalesce: bool = True) -> None:
        self._db = db
        self.coalesce = coalesce
        self.loads = Counts()
        self.stores = Counts()
        self._load_lane: _Lane[int, ContentRow | None] = _Lane(self._load_many)
        self._store_lane: _Lane[StoreRequest, bool] = _Lane(
            self._store_many, key=lambda request: request.content_id
        )

    async def load(self, content_id: int) -> ContentRow | None:
        """Post `content_id`, or None when it does not exist."""
        if not self.coalesce:
            return (await self._load_many([content_id]))[0]
        return await self._load_lane.submit(content_id)

    async def store(self, request: StoreRequest) -> bool:
        """Store a job's result with its attempt record (`classified`, or `already_classified`
        when another writer stored one first, which this returns as False). Raises
        ContentNotFound when the post is gone, and the database's error for a row it refuses.
        """
        if not self.coalesce:
            self.stores.rows += 1
            return await self._store_one(request)
        return await self._store_lane.submit(request)

    async def wait_idle(self) -> None:
        """Wait until no statement is queued or running (before the pool closes)."""
        await self._load_lane.wait_idle()
        await self._store_lane.wait_idle()

    async def _load_many(self, ids: list[int]) -> list[ContentRow | None]:
        self.loads.rows += len(ids)
        self.loads.statements += 1
        async with (
            self._db.connection() as conn,
            conn.cursor(row_factory=class_row(ContentRow)) as cur,
        ):
            await cur.execute(CONTENTS_BY_IDS, {"ids": ids})
            found = {row.id: row for row in await cur.fetchall()}
        return [found.get(content_id) for content_id in ids]

    async def _store_many(self, requests: list[StoreRequest]) -> list[bool | Exception]:
        self.stores.rows += len(requests)
        if len(requests) == 1:
            return await self._store_each(requests)
        # Posts in id order, as `classify` stores them: two statements lock rows in one order.
        ordered = sorted(range(len(requests)), key=lambda i: requests[i].content_id)
        self.stores.statements += 1
        try:
            async with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(STORE_MANY, _many_params([requests[i] for i in ordered]))
                rows = await cur.fetchall()
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
            # A row the database refused (or a post deleted just now): each on its own, so
            # only that row's job gets the error.
            return await self._store_each(requests)
        outcomes: list[bool | Exception] = [False] * len(requests)
        for i, row in zip(ordered, rows, strict=True):
            request = requests[i]
            if row["classification_id"] is not None:
                outcomes[i] = True
            elif not row["found"]:
                outcomes[i] = ContentNotFound(request.content_id)
        return outcomes

    async def _store_each(self, requests: Sequence[StoreRequest]) -> list[bool | Exception]:
        outcomes: list[bool | Exception] = []
        for request in requests:
            try:
                outcomes.append(await self._store_one(request))
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError, ContentNotFound) as e:
                outcomes.append(e)
        return outcomes

    async def _store_one(self, request: StoreRequest) -> bool:
        self.stores.statements += 1
        result = request.result
        params = {
            "content_id": request.content_id,
            "sentiment": result.sentiment,
            "confidence": result.confidence,
            "model_version": result.model_version,
            "meta": Jsonb(result.meta()),
            "job_id": request.job_id,
            "attempt": request.attempt,
        }
        try:
            async with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(STORE, params)
                stored = await cur.fetchone()
        except psycopg.errors.ForeignKeyViolation as err:
            raise ContentNotFound(request.content_id) from err
        return stored is not None and stored["classification_id"] is not None


def _many_params(requests: Sequence[StoreRequest]) -> dict[str, list[Any]]:
    return {
        "content_ids": [r.content_id for r in requests],
        "sentiments": [r.result.sentiment for r in requests],
        "confidences": [r.result.confidence for r in requests],
        "model_versions": [r.result.model_version for r in requests],
        "metas": [Jsonb(r.result.meta()) for r in requests],
        "job_ids": [r.job_id for r in requests],
        "attempts": [r.attempt for r in requests],
    }
