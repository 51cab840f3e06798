"""A NATS JetStream sink on the real server (127.0.0.1:4222): the same body, Nats-Msg-Id
set to the webhook-id, so the stream drops a repeat."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import nats
import orjson
import psycopg
import pytest

from tests.sinks.conftest import DeliverProcess, expected_ids, store
from volfefe.errors import DeliveryFailed
from volfefe.sinks.definition import DEFAULT_NATS_URL, SinkSpec
from volfefe.sinks.event import Event
from volfefe.sinks.table import add_sink
from volfefe.sinks.transport import NatsTransport

pytestmark = pytest.mark.db


async def stream_messages(stream: str, subject: str, n: int, timeout: float = 60) -> list[Any]:
    """The first `n` messages of `stream` (waiting for them), as (msg id header, body)."""
    client = await nats.connect(DEFAULT_NATS_URL)
    try:
        js = client.jetstream()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (await js.stream_info(stream)).state.messages < n:
            assert loop.time() < deadline, f"fewer than {n} messages in {stream}"
            await asyncio.sleep(0.05)
        found = []
        for seq in range(1, n + 1):
            raw = await js.get_msg(stream, seq)
            found.append(((raw.headers or {}).get("Nats-Msg-Id"), orjson.loads(raw.data or b"")))
        return found
    finally:
        await client.close()


async def create_stream(name: str, subject: str) -> None:
    client = await nats.connect(DEFAULT_NATS_URL)
    try:
        await client.jetstream().add_stream(name=name, subjects=[subject])
    finally:
        await client.close()


async def delete_stream(name: str) -> None:
    client = await nats.connect(DEFAULT_NATS_URL)
    try:
        await client.jetstream().delete_stream(name)
    finally:
        await client.close()


def test_results_reach_a_jetstream_subject_once_each(
    db_conn: psycopg.Connection[Any], deliverers: Callable[..., DeliverProcess]
) -> None:
    tag = uuid.uuid4().hex[:10]
    stream, subject = f"VOLFEFE_TEST_{tag}", f"volfefe-test.{tag}.signals"
    asyncio.run(create_stream(stream, subject))
    try:
        add_sink(db_conn, SinkSpec.nats(subject, url=None))
        deliverers()
        ids = store(db_conn, 4)
        got = asyncio.run(stream_messages(stream, subject, 4))
        assert [msg_id for msg_id, _ in got] == expected_ids(db_conn, ids)
        body = got[0][1]
        assert body["type"] == "classification.stored"
        assert body["data"]["classification"]["id"] == ids[0]

        async def publish_again() -> Any:  # a retry of a message the stream has: dropped
            transport = NatsTransport(subject, DEFAULT_NATS_URL, 5.0)
            try:
                await transport.send(Event(got[0][0], b"{}"))
            finally:
                await transport.aclose()
            client = await nats.connect(DEFAULT_NATS_URL)
            try:
                return (await client.jetstream().stream_info(stream)).state.messages
            finally:
                await client.close()

        assert asyncio.run(publish_again()) == 4
    finally:
        asyncio.run(delete_stream(stream))


def test_a_subject_no_stream_captures_is_a_failed_delivery() -> None:
    async def send() -> None:
        transport = NatsTransport(f"volfefe-nostream.{uuid.uuid4().hex}", DEFAULT_NATS_URL, 2.0)
        try:
            await transport.send(Event("msg_1_1", b"{}"))
        finally:
            await transport.aclose()

    with pytest.raises(DeliveryFailed, match="no JetStream stream captures subject"):
        asyncio.run(send())
