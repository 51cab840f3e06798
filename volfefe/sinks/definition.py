"""What a sink is when it is added: where events go, how they are signed, which results.

>>> spec = SinkSpec.webhook("https://desk.example/hook", secret=None)
>>> spec.kind, spec.secret.startswith("whsec_")
('webhook', True)
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from volfefe.errors import InvalidSink
from volfefe.result import SENTIMENTS

KINDS = ("webhook", "nats")
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32  # Standard Webhooks asks for 24 to 64 random bytes
# base64 of at least 18 bytes (24 characters), padded or not
SECRET_PATTERN = r"^whsec_(?:[A-Za-z0-9+/]{4}){6,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"  # noqa: S105
# a host name or IPv4 address, an optional port, then any path without spaces or control
# characters (spelled out: `\s` means more in Python than in the OpenAPI description's regex)
WEBHOOK_PATTERN = r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][^\x00-\x20\x7f]*)?$"
SUBJECT_PATTERN = r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$"  # no wildcards: one subject
NATS_URL_PATTERN = r"^(?:nats|tls)://[^\x00-\x20\x7f]+$"
NAME_PATTERN = r"^[^\x00]+$"


def new_secret() -> str:
    """A fresh signing secret, `whsec_` and 32 random bytes in base64.

    >>> len(base64.b64decode(new_secret().removeprefix("whsec_")))
    32
    """
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """A sink to add: `kind` webhook (target a URL, `secret` signs) or nats (target a
    subject on the JetStream server at `bus_url`), and the filters (None = any)."""

    kind: str
    target: str
    bus_url: str | None = None
    secret: str | None = None
    sentiments: tuple[str, ...] | None = None
    min_confidence: float | None = None
    sources: tuple[str, ...] | None = None

    @classmethod
    def webhook(cls, url: str, *, secret: str | None) -> SinkSpec:
        """A webhook to `url`, signed with `secret` (a new one when None)."""
        return cls("webhook", url, secret=new_secret() if secret is None else secret)

    @classmethod
    def nats(cls, subject: str, *, url: str | None) -> SinkSpec:
        """A JetStream subject on the NATS server at `url` (default: the local one)."""
        return cls("nats", subject, bus_url=url or DEFAULT_NATS_URL)

    def filtered(
        self,
        sentiments: list[str] | None = None,
        min_confidence: float | None = None,
        sources: list[str] | None = None,
    ) -> SinkSpec:
        """This sink, sent only results of these sentiments, confidences and sources."""
        return replace(
            self,
            sentiments=tuple(dict.fromkeys(sentiments)) if sentiments else None,
            min_confidence=min_confidence,
            sources=tuple(dict.fromkeys(sources)) if sources else None,
        )

    def checked(self) -> SinkSpec:
        """This spec, or InvalidSink saying which part is wrong."""
        if self.kind == "webhook":
            _match(WEBHOOK_PATTERN, self.target, "the webhook must be an http:// or https:// URL")
            if not urlsplit(self.target).hostname:
                raise InvalidSink(f"the webhook URL has no host: {self.target!r}")
            _match(SECRET_PATTERN, self.secret or "", "the secret must be whsec_ and base64")
        elif self.kind == "nats":
            _match(SUBJECT_PATTERN, self.target, "the subject must be tokens joined by dots")
            _match(NATS_URL_PATTERN, self.bus_url or "", "the bus URL must be nats:// or tls://")
        else:
            raise InvalidSink(f"a sink is one of {', '.join(KINDS)}, got {self.kind!r}")
        for sentiment in self.sentiments or ():
            if sentiment not in SENTIMENTS:
                raise InvalidSink(f"sentiments are {', '.join(SENTIMENTS)}, got {sentiment!r}")
        if self.min_confidence is not None and not 0 <= self.min_confidence <= 1:
            raise InvalidSink(f"min_confidence must be between 0 and 1, got {self.min_confidence}")
        for name in self.sources or ():
            _match(NAME_PATTERN, name, "a source name must not be empty or hold a NUL byte")
        return self


def _match(pattern: str, value: str, problem: str) -> None:
    # fullmatch: Python's `$` also matches before a final newline, JSON Schema's does not
    if not re.fullmatch(pattern, value):
        raise InvalidSink(f"{problem}, got {value!r}")
