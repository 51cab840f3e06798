"""The delivery loop: every sink gets every stored version after its cursor, in order.

```
Deliverer.run(stopping)       until `stopping` is set; a lost database: reconnect, go on
  session: 3 connections      listen (LISTEN volfefe_classified, volfefe_sinks), locks
                              (session advisory locks, one per sink this process sends to),
                              db (reads and cursor updates)
    listener                  a stored result wakes every sink task; a sink change starts or
                              stops one; every poll interval, the sink list is read again
    one task per sink         wait (a wake, the safety poll, or the retry's backoff)
                              -> own the sink's advisory lock? (else another process sends)
                              -> paused? wait -> read after the cursor -> send each wanted
                              one, moving the cursor after each -> on failure: count it,
                              back off, retry the same version (so order holds)
```
A sink's task never waits on another's: a failing receiver only delays itself. Two delivery
processes share the sinks through the advisory locks, so one sends to each sink; if that
process dies, its connection (and locks) go with it, and another takes the sink over within
the poll interval. A event sent whose cursor update was lost (a crash between the two) is
sent again, with the same id: at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
from typing import Any

import psycopg

from volfefe.config import Settings
from volfefe.errors import DeliveryFailed
from volfefe.sinks.backoff import retry_delay
from volfefe.sinks.event import event_for
from volfefe.sinks.outbox import BATCH, held_back, next_rows
from volfefe.sinks.table import CHANNEL as SINKS_CHANNEL
from volfefe.sinks.table import Sink, aget_sink, asink_ids, record_failure, record_sent
from volfefe.sinks.transport import Transport, transport_for
from volfefe.store.connect import CONNECT_TIMEOUT

logger = logging.getLogger(__name__)

CLASSIFIED = "volfefe_classified"
APPLICATION_NAME = "volfefe deliver"
LOCK_BASE = 0x736E6B << 40  # "snk": a sink's advisory lock is LOCK_BASE + its id
TRY_LOCK = "SELECT pg_try_advisory_lock(%(key)s)"
UNLOCK = "SELECT pg_advisory_unlock(%(key)s)"
RECONNECT_DELAY = 1.0  # seconds between tries when the database went away
HELD_FIRST = 0.02  # seconds before looking again at versions an older transaction holds back


class Pass(enum.Enum):
    """How one pass over a sink ended."""

    IDLE = "idle"  # everything sendable was sent
    MORE = "more"  # a full batch: go on at once
    HELD = "held"  # versions wait for an older transaction to end: look again soon
    FAILED = "failed"  # a delivery failed: back off


class Deliverer:
    """Sends stored results to every sink, from one process; see the module's docstring."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.settings = settings
        self._wakes: dict[int, asyncio.Event] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until `stopping` is set; reconnect whenever the database goes away."""
        while not stopping.is_set():
            session = asyncio.create_task(self._session())
            stopped = asyncio.create_task(stopping.wait())
            try:
                await asyncio.wait({session, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                if not session.done():
                    session.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stopped
            try:
                await session
            except asyncio.CancelledError:
                if not stopping.is_set():
                    raise
            except (psycopg.OperationalError, ExceptionGroup) as exc:
                logger.warning("delivery lost the database (%s); reconnecting", _why(exc))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RECONNECT_DELAY):
                        await stopping.wait()

    async def _session(self) -> None:
        async with (
            await _connect(self.url) as listen,
            await _connect(self.url) as locks,
            await _connect(self.url) as db,
        ):
            await listen.execute(f"LISTEN {CLASSIFIED}")
            await listen.execute(f"LISTEN {SINKS_CHANNEL}")
            try:
                async with asyncio.TaskGroup() as group:
                    await self._reconcile(group, db, locks)
                    while True:
                        async for note in listen.notifies(timeout=self.settings.sink_poll_interval):
                            if note.channel == CLASSIFIED:
                                self._wake_all()
                            else:
                                await self._reconcile(group, db, locks)
                                self._wake(int(note.payload))
                        await self._reconcile(group, db, locks)
            finally:
                self._wakes.clear()
                self._tasks.clear()

    async def _reconcile(
        self,
        group: asyncio.TaskGroup,
        db: psycopg.AsyncConnection[Any],
        locks: psycopg.AsyncConnection[Any],
    ) -> None:
        """A task for every sink that has none (a removed sink's task ends by itself)."""
        for sink_id in await asink_ids(db):
            task = self._tasks.get(sink_id)
            if task is None or task.done():
                wake = self._wakes[sink_id] = asyncio.Event()
                wake.set()
                self._tasks[sink_id] = group.create_task(
                    _SinkTask(sink_id, wake, self.settings, db, locks).run(),
                    name=f"volfefe sink {sink_id}",
                )

    def _wake_all(self) -> None:
        for wake in self._wakes.values():
            wake.set()

    def _wake(self, sink_id: int) -> None:
        wake = self._wakes.get(sink_id)
        if wake is not None:
            wake.set()


class _SinkTask:
    """The loop of one sink in one process."""

    def __init__(
        self,
        sink_id: int,
        wake: asyncio.Event,
        settings: Settings,
        db: psycopg.AsyncConnection[Any],
        locks: psycopg.AsyncConnection[Any],
    ) -> None:
        self.sink_id = sink_id
        self.wake = wake
        self.settings = settings
        self.db = db
        self.locks = locks
        self.owned = False
        self.transport: Transport | None = None

    async def run(self) -> None:
        """Until the sink is removed (or the session ends)."""
        loop = asyncio.get_running_loop()
        wait = 0.0
        backoff_until = 0.0
        held = HELD_FIRST
        try:
            while True:
                if backoff_until > loop.time():  # a retry is not hurried by new results
                    await asyncio.sleep(backoff_until - loop.time())
                elif not self.wake.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self.wake.wait()
                self.wake.clear()
                wait = self.settings.sink_poll_interval
                sink = await aget_sink(self.db, self.sink_id)
                if sink is None:
                    return
                if sink.paused or not await self._own():
                    continue
                try:
                    outcome, failures = await self._pass(sink)
                except psycopg.Error:
                    raise  # the session reconnects
                except Exception as exc:  # a bug or a broken sink must not end the others
                    logger.exception("sink %d: delivery pass failed", self.sink_id)
                    failures = await record_failure(self.db, self.sink_id, f"{exc!r}")
                    outcome = Pass.FAILED
                if outcome is Pass.FAILED:
                    backoff_until = loop.time() + retry_delay(
                        failures, self.settings.sink_backoff, self.settings.sink_backoff_max
                    )
                elif outcome is Pass.MORE:
                    self.wake.set()
                elif outcome is Pass.HELD:
                    wait, held = held, min(held * 2, self.settings.sink_poll_interval)
                if outcome is not Pass.HELD:
                    held = HELD_FIRST
        finally:
            await self._release()

    async def _own(self) -> bool:
        if not self.owned:
            cur = await self.locks.execute(TRY_LOCK, {"key": LOCK_BASE + self.sink_id})
            row = await cur.fetchone()
            self.owned = bool(row and row[0])
        return self.owned

    async def _pass(self, sink: Sink) -> tuple[Pass, int]:
        """Send what can be sent now, in order; stop at the first failure."""
        if self.transport is None:
            self.transport = transport_for(sink, self.settings.sink_timeout)
        rows = await next_rows(self.db, sink)
        passed: tuple[str, int] | None = None  # left out by the filters, not recorded yet
        for row in rows:
            if not row.wanted:
                passed = row.cursor
                continue
            try:
                await self.transport.send(event_for(row))
            except DeliveryFailed as exc:
                if passed is not None:
                    await record_sent(self.db, sink.id, passed, 0)
                failures = await record_failure(self.db, sink.id, str(exc))
                logger.warning(
                    "sink %d: %s (failure %d in a row; retrying)", sink.id, exc, failures
                )
                return Pass.FAILED, failures
            await record_sent(self.db, sink.id, row.cursor, 1)
            passed = None
        if passed is not None:
            await record_sent(self.db, sink.id, passed, 0)
        if len(rows) == BATCH:
            return Pass.MORE, 0
        if rows:
            xid, version = rows[-1].cursor
            sink = dataclasses.replace(sink, cursor_xid=xid, cursor_version=version)
        return (Pass.HELD if await held_back(self.db, sink) else Pass.IDLE), 0

    async def _release(self) -> None:
        if self.transport is not None:
            await self.transport.aclose()
        if self.owned and not self.locks.closed:
            with contextlib.suppress(psycopg.Error):
                await self.locks.execute(UNLOCK, {"key": LOCK_BASE + self.sink_id})
        self.owned = False


async def _connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(
        url,
        autocommit=True,
        connect_timeout=max(2, round(CONNECT_TIMEOUT)),
        application_name=APPLICATION_NAME,
    )


def _why(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_why(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"
