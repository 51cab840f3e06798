"""What a sink is sent: one JSON body per stored version, and its stable event id.

The body follows Standard Webhooks' shape, `{"type", "timestamp", "data"}`; the same bytes go
to a webhook and to the bus. The id, `msg_<classification id>_<version>`, is the same on every
retry of a version (a receiver deduplicates on it; NATS JetStream does, as `Nats-Msg-Id`), and
a reclassification is a new version, so a new id.

>>> Event("msg_1_2", b"{}").id
'msg_1_2'
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from volfefe.sinks.outbox import Row

STORED = "classification.stored"
TEST = "sink.test"


@dataclass(frozen=True, slots=True)
class Event:
    """One event: its id (`webhook-id`, `Nats-Msg-Id`) and its body."""

    id: str
    body: bytes


def event_for(row: Row) -> Event:
    """The event of one stored version: the classification and its post."""
    data = {
        "classification": {
            "id": row.id,
            "version": row.version,
            "sentiment": row.sentiment,
            "confidence": row.confidence,
            "probabilities": row.probabilities,
            "model_version": row.model_version,
            "classified_at": row.classified_at.isoformat(),
        },
        "post": {
            "id": row.post_id,
            "source": row.source,
            "external_id": row.external_id,
            "author": row.author,
            "published_at": row.published_at.isoformat() if row.published_at else None,
            "text": row.text,
            "url": row.url,
        },
    }
    body = {"type": STORED, "timestamp": row.classified_at.isoformat(), "data": data}
    return Event(f"msg_{row.id}_{row.version}", orjson.dumps(body))


def test_event(sink_id: int) -> Event:
    """A test event (`sinks test`): type `sink.test`, a fresh id each time.

    >>> orjson.loads(test_event(3).body)["data"]
    {'sink': 3}
    """
    body = {"type": TEST, "timestamp": datetime.now(UTC).isoformat(), "data": {"sink": sink_id}}
    return Event(f"msg_test_{uuid.uuid4().hex}", orjson.dumps(body))
