"""LoopThread: a caller that gives up never leaves a task whose exception nobody reads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from tests.helpers import eventually
from volfefe.supervisor.loop_thread import LoopThread


def test_a_cancelled_submit_whose_task_then_fails_logs_nothing() -> None:
    # The task fails after its caller cancelled (the pool broke as the run gave up, or the
    # coroutine turns its cancellation into an error): asyncio would log "Task exception was
    # never retrieved" once the task is collected, since the caller no longer reads it. The
    # autouse fixture `no_unretrieved_exceptions` (tests/conftest.py) fails the test then.
    runner = LoopThread()
    waiting = threading.Event()

    async def fails_when_cancelled() -> None:
        try:
            waiting.set()
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise RuntimeError("failed on the way out") from None

    try:
        future = runner.submit(fails_when_cancelled())
        assert waiting.wait(10)
        assert future.cancel()
        eventually(lambda: not asyncio.all_tasks(runner.loop), timeout=10)
    finally:
        runner.stop()
    with pytest.raises(concurrent.futures.CancelledError):
        future.result()


def test_a_submitted_error_still_reaches_the_caller() -> None:
    runner = LoopThread()

    async def fails() -> None:
        raise ValueError("seen")

    try:
        with pytest.raises(ValueError, match="seen"):
            runner.submit(fails()).result(timeout=10)
    finally:
        runner.stop()
