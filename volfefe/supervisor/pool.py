"""The supervisor: N ports sharing one queue of requests, with an OTP-style restart budget.

```
callers ──classify(texts)──> requests ──> RequestQueue ──batch──> slot 1: Port ─ child
                 (<= batch_size texts each)  (batching.py)           slot 2: Port ─ child
```

- Each slot boots its child, then takes one batch at a time: the waiting requests that fit
  the token budget (dynamic batching, see batching.py). A child that crashes, hangs or writes
  garbage fails only the call in flight, and is replaced.
- When a call of several texts fails, each of its texts is retried once, alone, on a fresh
  child: a poison text then fails alone and the others get their results. A call of one text
  is never retried: when it fails with a WorkerError, the text is answered with PoisonText.
- More than `max_restarts` replacements within `restart_window` seconds, or a child that exits
  with the boot-failure status, breaks the pool: every pending and later call raises PoolBroken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence

from volfefe.config import Settings
from volfefe.errors import (
    ClassifierError,
    PoisonText,
    PoolBroken,
    PoolClosed,
    WorkerBootError,
    WorkerError,
)
from volfefe.protocol import EXIT_BOOT_FAILED, Ready
from volfefe.supervisor.batching import Item, Request, RequestQueue
from volfefe.supervisor.port import Port
from volfefe.supervisor.provision import backend_args

logger = logging.getLogger(__name__)


class RestartBudget:
    """At most `max_restarts` restarts in any `window` seconds.

    >>> clock = iter([0.0, 1.0, 2.0]).__next__
    >>> budget = RestartBudget(1, 10.0, clock)
    >>> budget.record(), budget.record()
    (True, False)
    """

    def __init__(
        self, max_restarts: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max = max_restarts
        self._window = window
        self._clock = clock
        self._times: deque[float] = deque()

    def record(self) -> bool:
        """Count one restart now; False when the budget is exceeded."""
        now = self._clock()
        while self._times and now - self._times[0] > self._window:
            self._times.popleft()
        self._times.append(now)
        return len(self._times) <= self._max


class _Slot:
    def __init__(self, index: int) -> None:
        self.index = index
        self.port: Port | None = None
        self.failures = 0


class Pool:
    """Supervises `settings.workers` children; `classify` may be awaited by many tasks at once."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._queue = RequestQueue(settings.batch_tokens, settings.batch_size, settings.batch_wait)
        self._slots = [_Slot(i) for i in range(settings.workers)]
        self._budget = RestartBudget(settings.max_restarts, settings.restart_window)
        self._runners: list[asyncio.Task[None]] = []
        self._ready: asyncio.Future[Ready] = asyncio.get_running_loop().create_future()
        self._broken: PoolBroken | None = None
        self._closing = False
        self.stats = {"calls": 0, "texts": 0, "restarts": 0}
        self._backend_args: list[str] | None = None
        self._preparing = asyncio.Lock()

    def start(self) -> None:
        """Start one runner per slot; children boot concurrently in the background."""
        if not self._runners:
            self._runners = [
                asyncio.create_task(self._run(slot), name=f"volfefe-slot-{slot.index}")
                for slot in self._slots
            ]

    async def wait_ready(self) -> Ready:
        """The first child's ready line (raises PoolBroken when no child can start)."""
        self.start()
        return await asyncio.shield(self._ready)

    def pids(self) -> list[int]:
        """Process ids of the children that are up now."""
        return [
            s.port.pid
            for s in self._slots
            if s.port is not None and not s.port.dead and s.port.pid is not None
        ]

    async def classify(self, texts: Sequence[str]) -> list[Item]:
        """One item per text, in order: a result, the child's error, or a WorkerError."""
        self._check_open()
        self.start()
        size = self._settings.batch_size
        requests = [Request(list(texts[i : i + size])) for i in range(0, len(texts), size)]
        for request in requests:
            self._queue.put(request)
        try:
            chunks = await asyncio.gather(*(request.future for request in requests))
        except BaseException:
            for request in requests:
                request.future.cancel()
            raise
        return [item for chunk in chunks for item in chunk]

    async def close(self) -> None:
        """Stop taking calls, let queued and in-flight calls finish in the grace, stop children."""
        if self._closing:
            return
        self._closing = True
        self._queue.stop()
        if self._runners:
            _, late = await asyncio.wait(self._runners, timeout=self._settings.shutdown_grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._fail_queued(PoolClosed("the classifier was closed before this call ran"))
        ports = [s.port for s in self._slots if s.port is not None]
        await asyncio.gather(*(p.close(grace=2.0) for p in ports), return_exceptions=True)
        if not self._ready.done():
            self._ready.set_exception(PoolClosed("the classifier was closed"))
            self._ready.exception()  # retrieved: nobody may be waiting

    def _check_open(self) -> None:
        if self._broken is not None:
            raise self._broken
        if self._closing:
            raise PoolClosed("the classifier is closed")

    async def _run(self, slot: _Slot) -> None:
        try:
            while (port := await self._boot(slot)) is not None:
                batch = await self._queue.take()
                if batch is None:
                    return
                batch = [request for request in batch if not request.future.done()]
                if batch:
                    await self._serve(slot, port, batch)
        except asyncio.CancelledError:
            if slot.port is not None:
                await slot.port.kill()
            raise
        except Exception as exc:  # a bug here must not leave callers waiting forever
            logger.exception("slot %d failed", slot.index)
            self._break(exc)

    async def _boot(self, slot: _Slot) -> Port | None:
        while slot.port is None or slot.port.dead:
            if self._broken is not None or self._closing:
                return None
            if slot.failures:
                delay = min(2.0, 0.05 * 2**slot.failures) * random.uniform(0.5, 1.5)  # noqa: S311
                await asyncio.sleep(delay)
            try:
                slot.port = Port(self._settings, await self._children_backend())
                ready = await slot.port.start()
            except WorkerBootError as exc:
                slot.port = None
                slot.failures += 1
                if exc.returncode == EXIT_BOOT_FAILED or not self._budget.record():
                    self._break(exc)
                    return None
                logger.warning("child failed to boot, restarting: %s", exc)
                continue
            slot.failures = 0
            logger.info(
                "child %s ready: %s (%s, %d threads)",
                ready.pid,
                ready.model_version,
                ready.device,
                ready.threads,
            )
            if not self._ready.done():
                self._ready.set_result(ready)
        return slot.port

    async def _children_backend(self) -> list[str]:
        async with self._preparing:  # one export however many slots boot at once
            if self._backend_args is None:
                self._backend_args = await backend_args(self._settings)
            return self._backend_args

    async def _serve(self, slot: _Slot, port: Port, batch: list[Request]) -> None:
        texts = [text for request in batch for text in request.texts]
        self.stats["calls"] += 1
        self.stats["texts"] += len(texts)
        call = asyncio.create_task(port.call(texts))
        futures = [request.future for request in batch]
        try:
            while not call.done():
                waiting = [f for f in futures if not f.done()]
                if not waiting:  # every caller gave up; the child may still compute: burn it
                    call.cancel()
                    with contextlib.suppress(asyncio.CancelledError, WorkerError):
                        await call
                    self._replaced(slot, None)
                    return
                waiters: list[asyncio.Future[object]] = [call, *waiting]  # type: ignore[list-item]
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # close() past the grace: no caller may wait forever
            for request in batch:
                request.fail(PoolClosed("the classifier was closed while this call ran"))
            call.cancel()
            raise
        try:
            items: list[Item] = list(call.result())
        except WorkerError as exc:
            logger.warning("child %s failed: %s", port.pid, exc)
            if port.dead:
                self._replaced(slot, exc)
            for request in batch:
                if len(texts) > 1 and request.retryable:
                    self._retry_alone(request)
                elif len(texts) == 1:  # sent alone, it failed: poison (a permanent error)
                    request.resolve([_poison(exc)])
                else:
                    request.resolve([exc] * len(request.texts))
            return
        start = 0
        for request in batch:
            request.resolve(items[start : start + len(request.texts)])
            start += len(request.texts)

    def _replaced(self, slot: _Slot, cause: BaseException | None) -> None:
        slot.port = None
        self.stats["restarts"] += 1
        if not self._budget.record():
            self._break(cause or WorkerError("children keep failing"))

    def _retry_alone(self, request: Request) -> None:
        """Retry each text of a request from a failed call once, alone, ahead of new work."""
        if self._broken is not None:
            request.resolve([self._broken] * len(request.texts))
            return
        parts = [Request([text], retryable=False) for text in request.texts]

        def collect(_: object) -> None:
            if all(p.future.done() for p in parts) and not request.future.done():
                request.resolve([_only_item(p.future) for p in parts])

        def cancel_parts(future: asyncio.Future[list[Item]]) -> None:
            if future.cancelled():
                for part in parts:
                    part.future.cancel()

        request.future.add_done_callback(cancel_parts)
        for part in parts:
            part.future.add_done_callback(collect)
            self._queue.put(part, retry=True)

    def _break(self, cause: BaseException) -> None:
        if self._broken is not None:
            return
        broken = PoolBroken(f"the worker pool stopped restarting children: {cause}")
        broken.__cause__ = cause
        self._broken = broken
        logger.info("%s", broken)  # raised to every caller, so not logged as an error too
        self._fail_queued(broken)
        self._queue.stop()  # runners waiting on the queue wake up and exit
        if not self._ready.done():
            self._ready.set_exception(broken)
            self._ready.exception()

    def _fail_queued(self, exc: ClassifierError) -> None:
        for request in self._queue.drain():
            request.fail(exc)


def _poison(exc: WorkerError) -> PoisonText:
    poison = PoisonText(f"this text, sent alone, made a child fail: {exc}", reason=str(exc))
    poison.__cause__ = exc
    return poison


def _only_item(future: asyncio.Future[list[Item]]) -> Item:
    if future.cancelled():
        return PoolClosed("cancelled")
    exc = future.exception()
    if exc is not None:
        return exc if isinstance(exc, ClassifierError) else WorkerError(str(exc))
    return future.result()[0]
