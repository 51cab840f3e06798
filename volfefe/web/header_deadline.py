"""uvicorn's h11 protocol with a deadline on each request's head (line and headers).

uvicorn (0.55) bounds an idle keep-alive connection (`timeout_keep_alive`, armed after a
response) and the size of a head (`h11_max_incomplete_event_size`), but not the time a head
takes: a client that connects and sends nothing, or half a request line, holds its
connection forever (slowloris). Here a connection must deliver each complete head within
`header_timeout` seconds of connecting, or of the first byte of the next request on a
keep-alive connection, or it is closed without an answer.

```
connect ──arm──> head complete ──disarm──> body, app, response ──uvicorn's keep-alive──┐
   │ deadline passes: close                                   first byte of the next ──┘ arm
```
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)


class HeaderDeadlineProtocol(H11Protocol):
    """H11Protocol that closes a connection whose request head is not complete in time."""

    header_timeout: float = 10.0  # seconds; set by `with_header_deadline`

    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection and start its first head's deadline."""
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Feed h11; a head still incomplete keeps (or starts) its deadline."""
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # no complete request head yet
            if self._head_deadline is None:
                self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _expired(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        logger.debug(
            "closing the connection of %s: no complete request head within %g s",
            self.client,
            self.header_timeout,
        )
        self.transport.close()


def with_header_deadline(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to give uvicorn (`http=`) for a head deadline of `seconds`.

    >>> with_header_deadline(2.5).header_timeout
    2.5
    """
    return type("HeaderDeadline", (HeaderDeadlineProtocol,), {"header_timeout": seconds})
