"""A client-side deadline on every statement, for a server that stops answering altogether.

The statement timeout is enforced by the server, and TCP keepalives are answered by the
server's kernel: neither notices a server that is paused (SIGSTOP, a frozen VM) while its
machine is up. `LimitedConnection` runs each exchange with the server under a timer of the
statement timeout (from the connection's own `options`, see `with_limits` in
`volfefe.store.connect`) plus `MARGIN` seconds; when it fires, the socket is shut down, so
the blocked call fails with `psycopg.OperationalError` at once, like a dropped connection.

```
wait(exchange) ── timer(statement_timeout + MARGIN) ──> fires? shutdown(socket) -> libpq EOF
                                                         -> OperationalError ("a drop")
```
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg

MARGIN = 5.0  # seconds past the server's own statement timeout
_STATEMENT_TIMEOUT = re.compile(r"statement_timeout\s*=\s*(\d+)")


def client_deadline(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> float | None:
    """Seconds a statement on `conn` may take before its socket is cut: the statement timeout
    of its `options` plus MARGIN (None: no statement timeout, no deadline)."""
    match = _STATEMENT_TIMEOUT.search(conn.info.get_parameters().get("options", ""))
    milliseconds = int(match.group(1)) if match else 0
    return milliseconds / 1000 + MARGIN if milliseconds else None


class LimitedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait on the server (statements, BEGIN, COMMIT) fails
    after its deadline even when the server is silent. Open it like any connection:
    `LimitedConnection.connect(url, ...)`."""

    @functools.cached_property
    def client_deadline(self) -> float | None:
        """Seconds a statement may take before the socket is cut (None: no deadline)."""
        return client_deadline(self)

    def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
        """`psycopg.Connection.wait` (every exchange with the server goes through it), cut off
        at the client deadline; a wait given a timeout of its own, even None (only the wait
        for notifications is), is left alone."""
        deadline = self.client_deadline
        if deadline is None or "timeout" in kwargs:
            return super().wait(gen, *args, **kwargs)
        with cut_after(self, deadline):
            return super().wait(gen, *args, **kwargs)


class AsyncLimitedConnection(psycopg.AsyncConnection[Any]):
    """The asyncio twin of `LimitedConnection`, for the job worker's async pools (its own and
    procrastinate's): `AsyncLimitedConnection.connect(url, ...)` or a pool's
    `connection_class`."""

    @functools.cached_property
    def client_deadline(self) -> float | None:
        """Seconds a statement may take before the socket is cut (None: no deadline)."""
        return client_deadline(self)

    async def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
        """`psycopg.AsyncConnection.wait`, cut off at the client deadline like
        `LimitedConnection.wait` (a LISTEN connection's long wait is left alone)."""
        deadline = self.client_deadline
        if deadline is None or "timeout" in kwargs:
            return await super().wait(gen, *args, **kwargs)
        timer = asyncio.get_running_loop().call_later(deadline, shut_down_socket, self)
        try:
            return await super().wait(gen, *args, **kwargs)
        finally:
            timer.cancel()


def shut_down_socket(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """Shut the connection's socket down: its blocked wait fails like a dropped link."""
    # A duplicate of the descriptor: shutdown acts on the socket itself, and closing our
    # copy leaves libpq's descriptor valid (it then reads EOF: a dropped link).
    with (
        contextlib.suppress(OSError, psycopg.Error),
        socket.socket(fileno=os.dup(conn.fileno())) as sock,
    ):
        sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def cut_after(conn: psycopg.Connection[Any], seconds: float) -> Iterator[None]:
    """Shut the connection's socket down if the block is still running after `seconds`."""
    timer = threading.Timer(seconds, shut_down_socket, args=(conn,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
