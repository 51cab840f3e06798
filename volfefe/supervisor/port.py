"""One child process running `python -m volfefe.child --serve`, spoken to over NDJSON.

```
spawn ──> booting ──ready line──> idle <──> busy (one call or ping at a time)
             │                      │         │ timeout / crash / bad line / cancel
             └─ exit or timeout ────┴─────────┴──> dead (killed and reaped; never reused)
```

A port is disposable: after any failure it is killed and the pool makes a new one, so a late
reply can never be read as the answer to the next request.

With `VOLFEFE_PREEMPT=layers` a port may have several calls in flight (the pool sends at most
one express call of short texts beside a long one; the child answers it between two layers,
so replies may come out of order). Calls write their lines under a lock; one reader task
matches each reply line to its call by id. Any failure (EOF, a bad line, a reply to no call
in flight, a call's timeout, a cancelled call) kills the child and fails every call in flight
with the same error; a reply that comes back while another call is in flight pushes that
call's deadline back by the time it took, since the child ran it inside the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import signal
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from volfefe.config import Settings
from volfefe.errors import (
    CallTimeout,
    ProtocolError,
    WorkerBootError,
    WorkerCrashed,
    WorkerError,
)
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
    reply_id,
)
from volfefe.supervisor.child_env import child_environment

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 40
STDERR_LINE_CHARS = 4096  # longer stderr lines are cut (the rest is counted, not kept)
STDERR_CHUNK = 64 * 1024
LINE_LIMIT = 64 * 1024 * 1024  # a reply to a large batch is one long line
KILL_WAIT = 2.0
PING_TIMEOUT = 5.0  # seconds an idle child has to answer a ping (see Settings.idle_ping)
REAP_WARN = 5.0  # seconds after SIGKILL before a child that is still there is logged


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
        "--forward-tokens",
        str(settings.forward_tokens),
        *extra,
    ]
    if settings.revision:
        argv += ["--revision", settings.revision]
    return argv


class Port:
    """One supervised child. `start()` waits for its ready line; `call()` sends one request.

    Killing never waits: `kill()` sends SIGKILL and returns; the exit is reaped by a task that
    runs from spawn (`exited`), and a child still there `REAP_WARN` seconds after SIGKILL is
    logged and left to the kernel.
    """

    _ids = itertools.count(1)

    def __init__(self, settings: Settings, extra_args: Sequence[str] = ()) -> None:
        self._settings = settings
        self._extra_args = list(extra_args)
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_task: asyncio.Task[None] | None = None
        self._exit: asyncio.Task[int] | None = None
        self._reap_watch: asyncio.Task[None] | None = None
        self.ready: Ready | None = None
        self.dead = False
        self.calls = 0
        # Several calls in flight (VOLFEFE_PREEMPT=layers): see the module docstring.
        self.multiplexed = settings.preempt == "layers"
        self._in_flight: dict[int, _InFlight] = {}
        self._writing = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._ended: Callable[[], WorkerError] | None = None  # the error of every later call

    @property
    def pid(self) -> int | None:
        """The child's process id once spawned."""
        return self._proc.pid if self._proc else None

    @property
    def exited(self) -> asyncio.Task[int]:
        """Done when the child has exited and been reaped (its result is the exit status)."""
        assert self._exit is not None, "the port was not started"
        return self._exit

    def stderr_tail(self) -> str:
        """The last lines the child wrote to stderr."""
        return "\n".join(self._stderr)

    def rss_bytes(self) -> int | None:
        """The child's resident memory now (Linux), or None when unknown."""
        try:
            with open(f"/proc/{self.pid}/statm", "rb") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None

    async def start(self) -> Ready:
        """Spawn the child and wait up to `boot_timeout` for its ready line (WorkerBootError).

        OSError from the spawn itself (the executable is missing) is not a child's fault and
        propagates as is.
        """
        self._proc = await asyncio.create_subprocess_exec(
            *worker_argv(self._settings, self._extra_args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_environment(os.environ, self._settings.worker_env),
            limit=LINE_LIMIT,
            start_new_session=True,  # Ctrl-C reaches the orchestrator only; it decides
        )
        self._exit = asyncio.create_task(self._proc.wait(), name=f"volfefe-reap-{self.pid}")
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        timeout = self._settings.boot_timeout
        try:
            async with asyncio.timeout(timeout):
                line = await self._stdout().readline()
        except TimeoutError:
            self.kill()
            raise WorkerBootError(
                f"the child (pid {self.pid}) was not ready within {timeout:g} s",
                pid=self.pid,
                timed_out=True,
                stderr=self.stderr_tail(),
            ) from None
        except ValueError:  # a line over LINE_LIMIT: not a ready line
            line = b"<an over-long line>"
        except BaseException:
            self.kill()
            raise
        if not line:  # a child that cannot start may take a while to unload torch and exit
            code = await self._wait_exit(max(KILL_WAIT, self._settings.boot_timeout))
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
            self.kill()
            raise WorkerBootError(
                f"the child (pid {self.pid}) sent a bad ready line: {exc}",
                pid=self.pid,
                stderr=self.stderr_tail(),
            ) from None
        if self.multiplexed:
            self._reader = asyncio.create_task(
                self._read_replies(), name=f"volfefe-read-{self.pid}"
            )
        return self.ready

    async def call(self, texts: Sequence[str]) -> list[ItemResult | ItemError]:
        """Classify `texts` in the child, within `call_timeout`; the child dies on any failure."""
        self.calls += 1
        return await self._exchange(texts, self._settings.call_timeout)

    async def ping(self) -> None:
        """An empty request, answered within `PING_TIMEOUT` (or call_timeout if shorter): a
        frozen or garbling idle child fails it like a call and dies. Not counted in `calls`."""
        await self._exchange([], min(PING_TIMEOUT, self._settings.call_timeout))

    @property
    def in_flight(self) -> int:
        """Calls (and pings) sent and not answered yet."""
        return len(self._in_flight)

    async def _exchange(self, texts: Sequence[str], timeout: float) -> list[ItemResult | ItemError]:
        if self.multiplexed:
            return await self._exchange_among_others(texts, timeout)
        req = Request(next(self._ids), list(texts))
        proc = self._running()
        try:
            async with asyncio.timeout(timeout):
                assert proc.stdin is not None
                proc.stdin.write(encode(req))
                await proc.stdin.drain()
                line = await self._stdout().readline()
        except TimeoutError:
            self.kill()
            raise CallTimeout(timeout, pid=self.pid, stderr=self.stderr_tail()) from None
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        except ValueError:  # asyncio's LimitOverrunError: a reply line over LINE_LIMIT
            self.kill()
            raise ProtocolError(
                f"the child wrote a line over {LINE_LIMIT} bytes", pid=self.pid
            ) from None
        except BaseException:  # cancelled by the caller: the reply would arrive late, so burn it
            self.kill()
            raise
        if not line:
            raise WorkerCrashed(
                pid=self.pid, returncode=await self._wait_exit(), stderr=self.stderr_tail()
            )
        try:
            reply = decode_reply(line, expect_id=req.id, expect_items=len(req.texts))
        except DecodeError as exc:
            self.kill()
            raise ProtocolError(
                str(exc), raw=line, pid=self.pid, stderr=self.stderr_tail()
            ) from None
        return _items_of(reply)

    async def _exchange_among_others(
        self, texts: Sequence[str], timeout: float
    ) -> list[ItemResult | ItemError]:
        """One call while others may be in flight: its reply is matched by the reader."""
        if self._ended is not None:
            raise self._ended()
        if self.dead:  # killed, or its stdout just closed: it takes no call now
            raise WorkerCrashed(pid=self.pid, returncode=None, stderr=self.stderr_tail())
        proc = self._running()
        req = Request(next(self._ids), list(texts))
        loop = asyncio.get_running_loop()
        call = _InFlight(loop.create_future(), len(req.texts), loop.time())
        self._in_flight[req.id] = call
        try:
            async with asyncio.timeout(timeout) as call.deadline:
                async with self._writing:
                    assert proc.stdin is not None
                    proc.stdin.write(encode(req))
                    await proc.stdin.drain()
                reply = await asyncio.shield(call.reply)
        except TimeoutError:
            self._end(lambda: CallTimeout(timeout, pid=self.pid, stderr=self.stderr_tail()))
            raise self._ended_error() from None
        except (BrokenPipeError, ConnectionResetError):  # dead: the reader fails the call
            reply = await call.reply
        except BaseException:  # cancelled by the caller: the reply would come late, burn it
            self._in_flight.pop(req.id, None)
            self.kill()
            raise
        return _items_of(reply)

    async def _read_replies(self) -> None:
        """The reader of a multiplexed port: each reply line to its call, until a failure."""
        stdout = self._stdout()
        while True:
            try:
                line = await stdout.readline()
            except ValueError:  # asyncio's LimitOverrunError: a reply line over LINE_LIMIT
                over = f"the child wrote a line over {LINE_LIMIT} bytes"
                self._end(functools.partial(ProtocolError, over, pid=self.pid))
                return
            if line:
                if self._route(line):
                    continue
                return
            self.dead = True  # no call may start now; the ones in flight learn why
            crashed = functools.partial(WorkerCrashed, pid=self.pid, returncode=None)
            if not self._in_flight:  # closed, or died idle (the pool sees it exit)
                self._ended = self._ended or functools.partial(crashed, stderr=self.stderr_tail())
                return
            code = await self._wait_exit()
            tail = self.stderr_tail()
            self._end(functools.partial(WorkerCrashed, pid=self.pid, returncode=code, stderr=tail))
            return

    def _route(self, line: bytes) -> bool:
        """Hand a reply line to its call; False (the child is ended) when it answers none."""
        try:
            rid = reply_id(line)
            call = self._in_flight.get(rid) if isinstance(rid, int) else None
            if call is None or not isinstance(rid, int):
                raise DecodeError(f"reply id {rid!r} answers no request in flight")
            reply = decode_reply(line, expect_id=rid, expect_items=call.items)
        except DecodeError as exc:
            tail = self.stderr_tail()
            self._end(
                functools.partial(ProtocolError, str(exc), raw=line, pid=self.pid, stderr=tail)
            )
            return False
        del self._in_flight[rid]
        call.reply.set_result(reply)
        took = asyncio.get_running_loop().time() - call.sent
        for other in self._in_flight.values():  # the child ran this call inside older ones
            if other.sent > call.sent or other.deadline is None:
                continue
            if (when := other.deadline.when()) is not None:
                other.deadline.reschedule(when + took)
        return True

    def _end(self, error: Callable[[], WorkerError]) -> None:
        """The child failed: kill it and fail every call in flight (and later) with `error`."""
        if self._ended is None:
            self._ended = error
        self.kill()
        calls, self._in_flight = list(self._in_flight.values()), {}
        for call in calls:
            if not call.reply.done():
                call.reply.set_exception(self._ended())
                call.reply.exception()  # its caller may be gone: the error is read here too
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()

    def _ended_error(self) -> WorkerError:
        assert self._ended is not None
        return self._ended()

    async def close(self, grace: float) -> None:
        """Close stdin so the child exits by itself; SIGTERM after `grace`, SIGKILL 2 s later.

        Returns within about grace + 2 x KILL_WAIT seconds whatever the child does.
        """
        if self._proc is None or self._exit is None:
            return
        self.dead = True
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        if await self._exited_within(grace):
            return
        self._signal(signal.SIGTERM)
        if await self._exited_within(KILL_WAIT):
            return
        self.kill()
        await self._exited_within(KILL_WAIT)

    def kill(self) -> None:
        """SIGKILL the child and return at once; it is reaped in the background (idempotent)."""
        self.dead = True
        if self._proc is None or self._exit is None:
            return
        self._signal(signal.SIGKILL)
        if self._reap_watch is None and not self._exit.done():
            self._reap_watch = asyncio.create_task(self._watch_reap())

    async def _watch_reap(self) -> None:
        if not await self._exited_within(REAP_WARN):
            logger.error(
                "child %s did not exit %g s after SIGKILL (stuck in the kernel?); left behind",
                self.pid,
                REAP_WARN,
            )

    async def _exited_within(self, seconds: float) -> bool:
        assert self._exit is not None
        done, _ = await asyncio.wait([self._exit], timeout=seconds)
        return bool(done)

    async def _wait_exit(self, within: float = KILL_WAIT) -> int | None:
        """The exit status of a child that closed its stdout (killed if it lingers)."""
        assert self._exit is not None
        self.dead = True
        if not await self._exited_within(within):
            self.kill()
            return None
        await self.stderr_closed(within=1.0)  # let the last stderr lines arrive for the report
        return self._exit.result()

    async def stderr_closed(self, within: float) -> None:
        """Wait up to `within` seconds for the child's stderr to be read to its end."""
        if self._stderr_task is not None:
            await asyncio.wait([self._stderr_task], timeout=within)

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
        """Read stderr in bounded chunks, so no line length can break the reader."""
        assert self._proc is not None and self._proc.stderr is not None
        lines = StderrLines(STDERR_LINE_CHARS)
        while chunk := await self._proc.stderr.read(STDERR_CHUNK):
            for text in lines.feed(chunk):
                self._log_stderr(text)
        if tail := lines.flush():
            self._log_stderr(tail)

    def _log_stderr(self, text: str) -> None:
        self._stderr.append(text)
        logger.debug("child %s: %s", self.pid, text)


class StderrLines:
    """Splits a byte stream into lines of at most `limit` characters (the rest is dropped).

    >>> lines = StderrLines(4)
    >>> lines.feed(b"abcdefgh\\nok\\npart"), lines.flush()
    (['abcd [+4 bytes]', 'ok'], 'part')
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buf = bytearray()
        self._dropped = 0

    def feed(self, chunk: bytes) -> list[str]:
        """The complete lines in `chunk` (with what came before it)."""
        out: list[str] = []
        *complete, rest = chunk.split(b"\n")
        for piece in complete:
            self._add(piece)
            out.append(self._take())
        self._add(rest)
        return out

    def flush(self) -> str:
        """The unfinished last line, if any."""
        return self._take() if self._buf or self._dropped else ""

    def _add(self, piece: bytes) -> None:
        room = max(0, self._limit - len(self._buf))
        self._buf += piece[:room]
        self._dropped += len(piece) - min(room, len(piece))

    def _take(self) -> str:
        text = self._buf.decode("utf-8", "replace").rstrip()
        if self._dropped:
            text += f" [+{self._dropped} bytes]"
        self._buf.clear()
        self._dropped = 0
        return text


@dataclass(slots=True)
class _InFlight:
    """A call of a multiplexed port waiting for its reply."""

    reply: asyncio.Future[Reply]
    items: int  # texts sent: the reply must hold as many results
    sent: float  # on the loop's clock
    deadline: asyncio.Timeout | None = None


def _items_of(reply: Reply) -> list[ItemResult | ItemError]:
    if reply.error is not None:  # the whole request was refused: every item shares the error
        raise ProtocolError(f"the child refused the request: {reply.error.message}")
    return reply.results
