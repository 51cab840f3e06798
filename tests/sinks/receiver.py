"""A real HTTP receiver for the sink tests: an asyncio server on a thread of its own.

It answers every request with `status` (200 by default), records each attempt (headers and
body) and, when it answered 2xx, the message too; `stop()` closes the port (connections are
refused) and `start()` opens the same port again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from standardwebhooks import Webhook


@dataclass(frozen=True)
class Received:
    """One request as the receiver read it."""

    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        """The `webhook-id` header."""
        return self.headers["webhook-id"]

    def json(self) -> Any:
        """The body, parsed."""
        return orjson.loads(self.body)

    def verified(self, secret: str) -> Any:
        """The body, verified with the standardwebhooks package (raises if it does not)."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    """One webhook receiver on 127.0.0.1."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.attempts: list[Received] = []
        self.received: list[Received] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self.port = 0
        self.start()

    @property
    def url(self) -> str:
        """The URL to add as a webhook sink."""
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        """Listen (again, on the same port once it had one)."""
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop
        ).result(10)
        self._server = server
        self.port = int(server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        """Stop listening: deliveries now fail with a refused connection."""
        server, self._server = self._server, None
        if server is not None:

            async def close() -> None:
                server.close()
                await server.wait_closed()

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)

    def close(self) -> None:
        """Stop listening and end the thread."""
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def ids(self) -> list[str]:
        """The webhook-ids of the messages taken, in arrival order (repeats included)."""
        with self._changed:
            return [r.id for r in self.received]

    def wait(self, check: Callable[[Receiver], bool], timeout: float = 60.0) -> None:
        """Until `check(self)` holds (AssertionError after `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not check(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"receiver: condition not met within {timeout} s; "
                        f"{len(self.received)} taken, {len(self.attempts)} attempts"
                    )
                self._changed.wait(left)

    def wait_distinct(self, n: int, timeout: float = 60.0) -> None:
        """Until `n` distinct messages were taken."""
        self.wait(lambda r: len({x.id for x in r.received}) >= n, timeout)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[1:]
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines if ":" in line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status = self.status
            got = Received(headers, body)
            with self._changed:
                self.attempts.append(got)
                if 200 <= status < 300:
                    self.received.append(got)
                self._changed.notify_all()
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away mid-request: nothing was taken
        finally:
            writer.close()
