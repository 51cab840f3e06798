"""Small test helpers: waiting on a condition instead of sleeping, and process checks."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# What asyncio logs when a failed future or task is garbage collected unawaited.
UNRETRIEVED = "exception was never retrieved"


class Unretrieved(logging.Handler):
    """Keeps each "... exception was never retrieved" record logged by asyncio (any thread)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self._found: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record (message and traceback) when it is one of those."""
        if UNRETRIEVED in record.getMessage():
            with self._guard:
                self._found.append(logging.Formatter().format(record))

    def take(self) -> list[str]:
        """The records kept since the last call."""
        with self._guard:
            found, self._found = self._found, []
        return found


def assert_no_unretrieved(stderr: str) -> None:
    """Fail when a `python -m volfefe` process logged a future or task nobody awaited."""
    at = stderr.find(UNRETRIEVED)
    assert at < 0, stderr[max(0, at - 200) : at + 3000]


def eventually(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Poll `check` until it returns a truthy value (returned) or raise AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {check}")
        time.sleep(interval)


async def aeventually(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Async twin of `eventually`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {check}")
        await asyncio.sleep(interval)


def alive(pid: int) -> bool:
    """True when `pid` runs (a zombie counts as dead) and is a volfefe child."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X") and b"volfefe.child" in cmdline
