"""An asyncio event loop in a daemon thread, so synchronous code and any event loop can share
one worker pool (the pool's pipes belong to this loop alone)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
FINISH_WAIT = 1.0


async def _finish_tasks() -> None:
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if not others:
        return
    _, late = await asyncio.wait(others, timeout=FINISH_WAIT)
    if not late:  # asyncio.wait refuses an empty set
        return
    for task in late:
        task.cancel()
    await asyncio.wait(late, timeout=FINISH_WAIT)


async def _read_on_failure(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` in a task whose exception counts as read. When the caller cancelled its
    future and the task then fails anyway (the pool broke meanwhile, or the coroutine met
    its cancellation with an error), asyncio does not hand the error to the cancelled
    future, and nobody else can: without this it would log "Task exception was never
    retrieved" once the task is collected."""
    task = asyncio.current_task()
    assert task is not None
    task.add_done_callback(_read)
    return await coro


def _read(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


class LoopThread:
    """Runs coroutines on a private loop; `run()` blocks, `run_async()` awaits from another loop."""

    def __init__(self, name: str = "volfefe-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The private event loop."""
        return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the private loop; cancelling the future cancels it."""
        # Even a future cancelled at once runs its task's first step (asyncio schedules that
        # before the cancellation), so the wrapper always starts and `coro` is always awaited.
        return asyncio.run_coroutine_threadsafe(_read_on_failure(coro), self._loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` and block until it ends; Ctrl-C cancels it (and so kills a busy child)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run() called from its own loop: use run_async()")
        future = self.submit(coro)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` from another event loop; cancelling the awaiter cancels it."""
        return await asyncio.wrap_future(self.submit(coro))

    def stop(self) -> None:
        """Stop the loop and join the thread (call after the pool is closed).

        Tasks still running (callers whose requests the pool has just failed) get
        `FINISH_WAIT` seconds to hand their answer over, then are cancelled, so no thread
        waiting in `run()` is left blocked on a loop that no longer runs.
        """
        if self._loop.is_closed():
            return
        if threading.current_thread() is not self._thread:
            self.submit(_finish_tasks()).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
