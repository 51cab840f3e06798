"""The signal out: every stored classification, as it lands, without gaps after a restart.

```
watch(url, since=ID)                          (awatch: the same, async)
  connect; LISTEN volfefe_classified          first, so nothing committed from now on is missed
  catch up: classifications with id > ID      what landed while the consumer was away
  then each NOTIFY (migration 0003)           dropped if the catch-up already yielded it
  connection lost -> reconnect, LISTEN, catch up after the last id yielded, go on
```

NOTIFY is at-most-once: a notification sent while nobody listens is gone. The catch-up is
what makes the stream complete, so a consumer keeps the last `id` it handled and passes it as
`since` when it starts again. A result is yielded once per stored version: a reclassification
(same id, later `classified_at`) is yielded again.

>>> for signal in watch("postgresql://localhost/volfefe", since=41):  # doctest: +SKIP
...     print(signal.id, signal.content_id, signal.sentiment, signal.confidence)
42 17 negative 0.93
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.rows import tuple_row

from volfefe.errors import DatabaseUnavailable
from volfefe.store.connect import CONNECT_TIMEOUT, describe_target

logger = logging.getLogger(__name__)

CHANNEL = "volfefe_classified"
LISTEN = "LISTEN volfefe_classified"
CATCH_UP = """
SELECT id, content_id, sentiment, confidence, model_version, updated_at AS classified_at
FROM classifications
WHERE id > %(since)s
ORDER BY id
"""
# Where a first start without `since` begins, and the horizon of the dedupe: a result stored
# longer ago than that cannot still have its notification on the way (unless its transaction
# ran for an hour), so the catch-up need not remember it. Keeps a big catch-up's memory small.
START = "SELECT coalesce(max(id), 0), now() - interval '1 hour' FROM classifications"
RECONNECT_DELAY = 1.0  # seconds between attempts when the database went away mid-watch


@dataclass(frozen=True, slots=True)
class Signal:
    """One stored classification, as announced on `volfefe_classified`.

    >>> Signal.from_payload('{"id": 3, "content_id": 9, "sentiment": "positive", '
    ...     '"confidence": 0.9, "model_version": "m@1", '
    ...     '"classified_at": "2025-01-02T03:04:05.000006+00:00"}').content_id
    9
    """

    id: int
    content_id: int
    sentiment: str
    confidence: float
    model_version: str
    classified_at: datetime

    @classmethod
    def from_payload(cls, payload: str) -> Signal:
        """Parse a NOTIFY payload (migration 0003's JSON object)."""
        data = orjson.loads(payload)
        return cls(
            id=int(data["id"]),
            content_id=int(data["content_id"]),
            sentiment=str(data["sentiment"]),
            confidence=float(data["confidence"]),
            model_version=str(data["model_version"]),
            classified_at=datetime.fromisoformat(data["classified_at"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (`classified_at` in ISO 8601)."""
        return {
            "id": self.id,
            "content_id": self.content_id,
            "sentiment": self.sentiment,
            "confidence": self.confidence,
            "model_version": self.model_version,
            "classified_at": self.classified_at.isoformat(),
        }

    @property
    def key(self) -> tuple[int, datetime]:
        """What makes a stored version unique: the classification id and when it was stored."""
        return (self.id, self.classified_at)


class _Cursor:
    """Where a watch stands: the highest id yielded, and the versions the catch-ups yielded
    (their notifications may still be on the way)."""

    def __init__(self, since: int | None) -> None:
        self.since = since
        self.caught_up: set[tuple[int, datetime]] = set()
        self.horizon: datetime | None = None

    def start(self, row: tuple[Any, ...] | None) -> None:
        """Called after LISTEN with START's row: a first start without `since` catches up on
        nothing."""
        max_id, self.horizon = row if row else (0, None)
        if self.since is None:
            self.since = int(max_id)

    def fresh(self, signal: Signal, *, from_catch_up: bool) -> bool:
        """True when `signal` was not yielded yet; remembers it."""
        if signal.key in self.caught_up:
            return False
        if from_catch_up and (self.horizon is None or signal.classified_at >= self.horizon):
            self.caught_up.add(signal.key)
        self.since = max(self.since or 0, signal.id)
        return True


def watch(url: str, *, since: int | None = None, timeout: float | None = None) -> Iterator[Signal]:
    """Yield each stored classification as it lands; first every one with id > `since`.

    `since=None` starts with what lands from now on. `timeout` ends the iteration after that
    many seconds without a signal (None: never). A lost connection is reopened and the gap
    caught up; a database that cannot be reached at the start raises `DatabaseUnavailable`.
    """
    cursor = _Cursor(since)
    conn = _connect(url)
    try:
        listening = False
        while True:
            try:
                if not listening:
                    with conn.cursor(row_factory=tuple_row) as cur:
                        cur.execute(LISTEN)
                        listening = True
                        cursor.start(cur.execute(START).fetchone())
                        rows = cur.execute(CATCH_UP, {"since": cursor.since}).fetchall()
                    for row in rows:
                        signal = Signal(*row)
                        if cursor.fresh(signal, from_catch_up=True):
                            yield signal
                got_one = False
                with contextlib.closing(conn.notifies(**_wait(timeout))) as notes:
                    for note in notes:
                        got_one = True
                        if note.channel != CHANNEL:
                            continue
                        signal = Signal.from_payload(note.payload)
                        if cursor.fresh(signal, from_catch_up=False):
                            yield signal
                if timeout is not None and not got_one:
                    return
            except psycopg.OperationalError as exc:
                logger.warning("watch lost the database (%s); reconnecting", exc)
                conn.close()
                conn = _reconnect(url)
                listening = False
    finally:
        conn.close()


async def awatch(
    url: str, *, since: int | None = None, timeout: float | None = None
) -> AsyncIterator[Signal]:
    """Async twin of `watch`: the same signals, the same catch-up, on the caller's loop."""
    cursor = _Cursor(since)
    conn = await _aconnect(url)
    try:
        listening = False
        while True:
            try:
                if not listening:
                    async with conn.cursor(row_factory=tuple_row) as cur:
                        await cur.execute(LISTEN)
                        listening = True
                        cursor.start(await (await cur.execute(START)).fetchone())
                        await cur.execute(CATCH_UP, {"since": cursor.since})
                        rows = await cur.fetchall()
                    for row in rows:
                        signal = Signal(*row)
                        if cursor.fresh(signal, from_catch_up=True):
                            yield signal
                got_one = False
                async with contextlib.aclosing(conn.notifies(**_wait(timeout))) as anotes:
                    async for note in anotes:
                        got_one = True
                        if note.channel != CHANNEL:
                            continue
                        signal = Signal.from_payload(note.payload)
                        if cursor.fresh(signal, from_catch_up=False):
                            yield signal
                if timeout is not None and not got_one:
                    return
            except psycopg.OperationalError as exc:
                logger.warning("awatch lost the database (%s); reconnecting", exc)
                await conn.close()
                conn = await _areconnect(url)
                listening = False
    finally:
        await conn.close()


def _wait(timeout: float | None) -> dict[str, Any]:
    """How long one `notifies()` listens: for ever, or, with a timeout, until the first
    packet of notifications, so that the next `notifies()` counts the timeout from that
    signal. Never `break` out of one instead: the rest of the packet would be lost (a
    transaction that stored several results sends their notifications together).
    """
    return {"timeout": timeout} if timeout is None else {"timeout": timeout, "stop_after": 1}


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(1, round(CONNECT_TIMEOUT)),
            application_name="volfefe watch",
        )
    except psycopg.OperationalError as err:
        where = describe_target(url)
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {where}: {err}") from err


async def _aconnect(url: str) -> psycopg.AsyncConnection[Any]:
    try:
        return await psycopg.AsyncConnection.connect(
            url,
            autocommit=True,
            connect_timeout=max(1, round(CONNECT_TIMEOUT)),
            application_name="volfefe watch",
        )
    except psycopg.OperationalError as err:
        where = describe_target(url)
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {where}: {err}") from err


def _reconnect(url: str) -> psycopg.Connection[Any]:
    while True:
        try:
            return _connect(url)
        except DatabaseUnavailable:
            time.sleep(RECONNECT_DELAY)


async def _areconnect(url: str) -> psycopg.AsyncConnection[Any]:
    while True:
        try:
            return await _aconnect(url)
        except DatabaseUnavailable:
            await asyncio.sleep(RECONNECT_DELAY)
