"""How a event reaches a sink: a signed HTTP POST, or a NATS JetStream publish.

```
webhook   POST body; headers webhook-id, webhook-timestamp (the attempt's, Unix seconds),
          webhook-signature `v1,<base64 HMAC-SHA256>` of "id.timestamp.body" with the sink's
          secret (Standard Webhooks, signed by the `standardwebhooks` package); 2xx = taken
nats      JetStream publish to the sink's subject, header Nats-Msg-Id = the event id (the
          stream drops a repeat within its duplicate window); the stream's ack = taken
```
Anything else (an error status, no answer within `sink_timeout`, a refused connection, no
stream for the subject) raises DeliveryFailed; the caller retries later.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from standardwebhooks import Webhook

from volfefe.errors import DeliveryFailed, InvalidSink
from volfefe.sinks.event import Event, test_event
from volfefe.sinks.table import Sink

try:  # the `nats` extra
    import nats
    from nats.aio.client import Client as NatsClient
    from nats.js import JetStreamContext
except ImportError:  # pragma: no cover - depends on the install
    nats = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

USER_AGENT = "volfefe-webhooks"


class Transport(Protocol):
    """Sends events to one sink; holds its connection between events."""

    async def send(self, event: Event) -> None:
        """Deliver `event`, or raise DeliveryFailed."""

    async def aclose(self) -> None:
        """Close the connection, if any."""


def transport_for(sink: Sink, timeout: float) -> Transport:
    """The transport of `sink`, each wait bounded by `timeout` seconds."""
    if sink.kind == "webhook":
        return WebhookTransport(sink.target, sink.secret or "", timeout)
    if sink.kind == "nats":
        return NatsTransport(sink.target, sink.bus_url or "", timeout)
    raise InvalidSink(f"sink {sink.id} has an unknown kind {sink.kind!r}")


def signed_headers(secret: str, event: Event, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of `event` sent at `at`.

    >>> h = signed_headers("whsec_" + "A" * 32, Event("msg_1_1", b"{}"),
    ...                    datetime(2025, 1, 1, tzinfo=UTC))
    >>> h["webhook-timestamp"], h["webhook-signature"][:3]
    ('1735689600', 'v1,')
    """
    return {
        "webhook-id": event.id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event.id, at, event.body),
    }


class WebhookTransport:
    """POSTs signed events to one URL."""

    def __init__(self, url: str, secret: str, timeout: float) -> None:
        self.url = url
        self.secret = secret
        self._client = httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, headers={"user-agent": USER_AGENT}
        )

    async def send(self, event: Event) -> None:
        """POST the event; DeliveryFailed unless the answer is 2xx."""
        headers = {
            "content-type": "application/json",
            **signed_headers(self.secret, event, datetime.now(UTC)),
        }
        try:
            response = await self._client.post(self.url, content=event.body, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc or 'no answer'}") from exc
        if not response.is_success:
            raise DeliveryFailed(f"HTTP {response.status_code} from the webhook")

    async def aclose(self) -> None:
        """Close the HTTP client's connections."""
        await self._client.aclose()


class NatsTransport:
    """Publishes events to one JetStream subject; connects on first use and after a failure."""

    def __init__(self, subject: str, url: str, timeout: float) -> None:
        if nats is None:
            raise InvalidSink("NATS sinks need the nats extra: pip install 'volfefe[nats]'")
        self.subject = subject
        self.url = url
        self.timeout = timeout
        self._client: NatsClient | None = None
        self._js: JetStreamContext | None = None

    async def _connect(self) -> JetStreamContext:
        if self._js is None:
            self._client = await nats.connect(
                servers=[self.url],
                connect_timeout=max(1, round(self.timeout)),
                max_reconnect_attempts=0,
                allow_reconnect=False,
                error_cb=_quiet,
                disconnected_cb=_nothing,
                closed_cb=_nothing,
            )
            self._js = self._client.jetstream(timeout=self.timeout)
        return self._js

    async def send(self, event: Event) -> None:
        """Publish and wait for the stream's ack; DeliveryFailed otherwise."""
        try:
            js = await self._connect()
            await js.publish(
                self.subject,
                event.body,
                timeout=self.timeout,
                headers={"Nats-Msg-Id": event.id},
            )
        except Exception as exc:  # nats-py raises many unrelated classes; each means "not taken"
            await self.aclose()
            what = str(exc) or type(exc).__name__
            if type(exc).__name__ in ("NoRespondersError", "NoStreamResponseError"):
                what = f"no JetStream stream captures subject {self.subject!r} ({what})"
            raise DeliveryFailed(f"NATS at {self.url}: {what}") from exc

    async def aclose(self) -> None:
        """Close the NATS connection, if open."""
        client, self._client, self._js = self._client, None, None
        if client is not None and not client.is_closed:
            try:
                await client.close()
            except Exception as exc:  # a broken connection may fail to close; it is gone anyway
                logger.debug("closing the NATS connection: %s", exc)


async def _quiet(exc: Exception) -> None:
    logger.debug("NATS: %s", exc)


async def _nothing(*_: Any) -> None:
    return None


async def send_test(sink: Sink, timeout: float) -> Event:
    """Send a test event (`sink.test`) to `sink` now, paused or not; DeliveryFailed if it
    is not taken. The sink's cursor and counters are left alone."""
    transport = transport_for(sink, timeout)
    event = test_event(sink.id)
    try:
        await transport.send(event)
    finally:
        await transport.aclose()
    return event
