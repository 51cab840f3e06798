"""Small test helpers, one copy each: waiting on a condition instead of sleeping, process
checks, the CLI as a user runs it, and input files."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from click.testing import CliRunner

from volfefe.cli.main import main

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


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m volfefe ARGS` as a user runs it: a real process, the test's environment plus
    `env`, never a model hub; fails when it logged a future nobody awaited."""
    proc = subprocess.run(
        [sys.executable, "-m", "volfefe", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )
    assert_no_unretrieved(proc.stderr)
    return proc


@dataclass(frozen=True)
class Invoked:
    """What `invoke_cli` saw: the exit status and both streams."""

    code: int
    stdout: str
    stderr: str


def invoke_cli(*args: str, env: Mapping[str, str] | None = None) -> Invoked:
    """`volfefe ARGS` in this process, through click's CliRunner isolation (streams and
    environment), with the CLI's own error handling (`volfefe.cli.main.main`): for usage and
    configuration errors, which need no real process; `run_cli` is the real process."""
    code: int | str | None = 0
    with CliRunner().isolation(env=dict(env or {})) as (out, err, _):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code
    assert isinstance(code, int), code
    return Invoked(code, out.getvalue().decode(), err.getvalue().decode())


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """Write records as JSON Lines (strings are written as raw lines, for broken input)."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
