"""One LISTEN connection fans `volfefe_classified` notifications out to every SSE client.

```
PostgreSQL --NOTIFY volfefe_classified--> Hub._listen (one connection, reconnects)
                                            |-> subscriber queue (one per client, bounded)
                                            '-> subscriber queue ...
```
A client that falls behind by more than `QUEUE_SIZE` events is dropped (its stream ends);
its browser reconnects with `Last-Event-ID` and catches up from the table, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
import psycopg

logger = logging.getLogger(__name__)

CHANNEL = "volfefe_classified"
QUEUE_SIZE = 1000
CONNECT_TIMEOUT = 10  # seconds (libpq takes whole seconds)
RECONNECT_DELAY = 2.0  # seconds between attempts to listen again after a lost connection


class Hub:
    """Broadcasts classification notifications to subscribers (asyncio queues)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    def start(self) -> None:
        """Start listening in a background task."""
        self._task = asyncio.create_task(self._run(), name="volfefe-hub")

    async def close(self) -> None:
        """Stop listening and end every subscriber's stream."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.end_streams()

    def end_streams(self) -> None:
        """End every subscriber's stream now (the server is stopping; clients reconnect)."""
        for queue in list(self._subscribers):
            self._end(queue)

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        """A queue that receives each new classification (None: the stream must end)."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """Stop sending to `queue`."""
        self._subscribers.discard(queue)

    def publish(self, event: dict[str, Any]) -> None:
        """Give `event` to every subscriber; one that is full is dropped."""
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._end(queue)

    def _end(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._subscribers.discard(queue)
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)
        if queue.full():  # make room for the end marker: the client catches up anyway
            queue.get_nowait()
            queue.put_nowait(None)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError) as exc:
                logger.warning("lost the notification connection (%s); listening again", exc)
            self.listening.clear()
            self.end_streams()  # clients reconnect and catch up from the table after the gap
            await asyncio.sleep(RECONNECT_DELAY)

    async def _listen(self) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._url,
            autocommit=True,
            application_name="volfefe serve listen",
            connect_timeout=CONNECT_TIMEOUT,
        )
        async with conn:
            await conn.execute("LISTEN volfefe_classified")
            self.listening.set()
            async for note in conn.notifies():
                try:
                    event = orjson.loads(note.payload)
                except orjson.JSONDecodeError:
                    logger.warning("ignored a malformed notification: %r", note.payload[:200])
                    continue
                self.publish(event)
