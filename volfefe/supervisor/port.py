"""One child process running `worker/classify.py --serve`, spoken to over NDJSON.

```
spawn ──> booting ──ready line──> idle <──> busy (one call at a time)
             │                      │         │ timeout / crash / bad line / cancel
             └─ exit or timeout ────┴─────────┴──> dead (killed and reaped; never reused)
```

A port is disposable: after any failure it is killed and the pool makes a new one, so a late
reply can never be read as the answer to the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
from collections import deque
from collections.abc import Sequence

from volfefe.config import Settings
from volfefe.errors import CallTimeout, ProtocolError, WorkerBootError, WorkerCrashed
from volfefe.protocol import (
    EXIT_BOOT_FAILED,
    DecodeError,
    ItemError,
    ItemResult,
    Ready,
    Reply,
    Request,
    decode_ready,
    decode_reply,
    encode,
)

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 40
LINE_LIMIT = 64 * 1024 * 1024  # a reply to a large batch is one long line
KILL_WAIT = 2.0


def worker_argv(settings: Settings, extra: Sequence[str] = ()) -> list[str]:
    """The child's argument list (never a shell string)."""
    argv = [
        *settings.worker_cmd,
        "--serve",
        "--model",
        settings.model,
        "--threads",
        str(settings.child_threads),
        "--device",
        settings.device,
        "--max-chars",
        str(settings.max_chars),
        "--quantize",
        settings.quantize,
        "--batch-tokens",
        str(settings.forward_tokens),
        *extra,
    ]
    if settings.revision:
        argv += ["--revision", settings.revision]
    return argv


class Port:
    """One supervised child. `start()` waits for its ready line; `call()` sends one request."""

    _ids = itertools.count(1)

    def __init__(self, settings: Settings, extra_args: Sequence[str] = ()) -> None:
        self._settings = settings
        self._extra_args = list(extra_args)
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_task: asyncio.Task[None] | None = None
        self.ready: Ready | None = None
        self.dead = False

    @property
    def pid(self) -> int | None:
        """The child's process id once spawned."""
        return self._proc.pid if self._proc else None

    def stderr_tail(self) -> str:
        """The last lines the child wrote to stderr."""
        return "\n".join(self._stderr)

    async def start(self) -> Ready:
        """Spawn the child and wait up to `boot_timeout` for its ready line (WorkerBootError)."""
        env = {**os.environ, **self._settings.worker_env}
        self._proc = await asyncio.create_subprocess_exec(
            *worker_argv(self._settings, self._extra_args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            limit=LINE_LIMIT,
            start_new_session=True,  # Ctrl-C reaches the orchestrator only; it decides
        )
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        timeout = self._settings.boot_timeout
        try:
            async with asyncio.timeout(timeout):
                line = await self._stdout().readline()
        except TimeoutError:
            await self.kill()
            raise WorkerBootError(
                f"the child (pid {self.pid}) was not ready within {timeout:g} s",
                pid=self.pid,
                timed_out=True,
                stderr=self.stderr_tail(),
            ) from None
        except BaseException:
            await self.kill()
            raise
        if not line:
            code = await self._wait_exit()
            why = (
                "cannot start (it will not be restarted)"
                if code == EXIT_BOOT_FAILED
                else "exited during boot"
            )
            raise WorkerBootError(
                f"the child (pid {self.pid}) {why}, status {code}",
                pid=self.pid,
                returncode=code,
                stderr=self.stderr_tail(),
            )
        try:
            self.ready = decode_ready(line)
        except DecodeError as exc:
            await self.kill()
            raise WorkerBootError(
                f"the child (pid {self.pid}) sent a bad ready line: {exc}",
                pid=self.pid,
                stderr=self.stderr_tail(),
            ) from None
        return self.ready

    async def call(self, texts: Sequence[str]) -> list[ItemResult | ItemError]:
        """Classify `texts` in the child, within `call_timeout`; the child dies on any failure."""
        req = Request(next(self._ids), list(texts))
        timeout = self._settings.call_timeout
        proc = self._running()
        try:
            async with asyncio.timeout(timeout):
                assert proc.stdin is not None
                proc.stdin.write(encode(req))
                await proc.stdin.drain()
                line = await self._stdout().readline()
        except TimeoutError:
            await self.kill()
            raise CallTimeout(timeout, pid=self.pid, stderr=self.stderr_tail()) from None
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        except BaseException:  # cancelled by the caller: the reply would arrive late, so burn it
            await self.kill()
            raise
        if not line:
            raise WorkerCrashed(
                pid=self.pid, returncode=await self._wait_exit(), stderr=self.stderr_tail()
            )
        try:
            reply = decode_reply(line, expect_id=req.id, expect_items=len(req.texts))
        except DecodeError as exc:
            await self.kill()
            raise ProtocolError(
                str(exc), raw=line, pid=self.pid, stderr=self.stderr_tail()
            ) from None
        return _items_of(reply)

    async def close(self, grace: float) -> None:
        """Close stdin so the child exits by itself; terminate, then kill, if it takes longer."""
        if self._proc is None or self.dead:
            return
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            async with asyncio.timeout(grace):
                await self._proc.wait()
        except TimeoutError:
            self._signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(KILL_WAIT):
                    await self._proc.wait()
            except TimeoutError:
                pass
        await self.kill()

    async def kill(self) -> None:
        """SIGKILL the child and reap it (idempotent)."""
        self.dead = True
        if self._proc is None:
            return
        self._signal(signal.SIGKILL)
        await self._wait_exit()

    async def _wait_exit(self) -> int | None:
        assert self._proc is not None
        self.dead = True
        code = await self._proc.wait()
        if self._stderr_task is not None:  # let the last stderr lines arrive for the report
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.shield(self._stderr_task)
        return code

    def _signal(self, sig: int) -> None:
        assert self._proc is not None
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    def _running(self) -> asyncio.subprocess.Process:
        if self._proc is None or self.dead or self.ready is None:
            raise RuntimeError("port is not ready")
        return self._proc

    def _stdout(self) -> asyncio.StreamReader:
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout

    async def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            text = line.decode("utf-8", "replace").rstrip()
            self._stderr.append(text)
            logger.debug("child %s: %s", self._proc.pid, text)


def _items_of(reply: Reply) -> list[ItemResult | ItemError]:
    if reply.error is not None:  # the whole request was refused: every item shares the error
        raise ProtocolError(f"the child refused the request: {reply.error.message}")
    return reply.results
