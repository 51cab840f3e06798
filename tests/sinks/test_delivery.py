"""Delivery to webhooks with real receivers and real `python -m volfefe deliver` processes:
signed, in order, nothing lost across downtime, failing receivers isolated, pause, filters,
reclassifications, two delivery processes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.helpers import eventually
from tests.sinks.conftest import DeliverProcess, expected_ids, store, wait_delivering
from tests.sinks.receiver import Receiver
from volfefe.result import Classification
from volfefe.sinks.definition import SinkSpec
from volfefe.sinks.table import Sink, add_sink, get_sink, set_paused
from volfefe.store.posts import replace_classification

pytestmark = pytest.mark.db

Receivers = Callable[..., Receiver]
Deliverers = Callable[..., DeliverProcess]


def webhook(conn: psycopg.Connection[Any], receiver: Receiver, **filters: Any) -> Sink:
    """Add a webhook sink to `receiver`."""
    spec = SinkSpec.webhook(receiver.url, secret=None)
    return add_sink(conn, spec.filtered(**filters) if filters else spec)


def test_each_result_is_signed_and_sent_in_order(
    db_conn: psycopg.Connection[Any], receivers: Receivers, deliverers: Deliverers
) -> None:
    receiver = receivers()
    sink = webhook(db_conn, receiver)
    deliverers()
    ids = store(db_conn, 5)
    receiver.wait_distinct(5)
    assert receiver.ids() == expected_ids(db_conn, ids)
    first = receiver.received[0]
    event = first.verified(sink.secret or "")  # the standardwebhooks package's own check
    assert event["type"] == "classification.stored"
    classification, post = event["data"]["classification"], event["data"]["post"]
    assert classification["id"] == ids[0]
    assert set(classification) == {
        "id",
        "version",
        "sentiment",
        "confidence",
        "probabilities",
        "model_version",
        "classified_at",
    }
    assert (classification["sentiment"], classification["model_version"]) == ("negative", "m@1")
    assert classification["probabilities"] == {"negative": 0.75}
    assert set(post) == {"id", "source", "external_id", "author", "published_at", "text", "url"}
    assert (post["source"], post["text"]) == ("jobs-test", "post 0")
    assert first.headers["content-type"] == "application/json"
    assert eventually(lambda: get_sink(db_conn, sink.id).delivered == 5)


def test_receiver_and_deliverer_downtime_lose_nothing(
    db_conn: psycopg.Connection[Any], receivers: Receivers, deliverers: Deliverers
) -> None:
    receiver = receivers()
    sink = webhook(db_conn, receiver)
    first = deliverers()
    ids = store(db_conn, 3)
    receiver.wait_distinct(3)

    receiver.stop()  # the desk is down: deliveries fail and are retried
    ids += store(db_conn, 3)
    eventually(lambda: get_sink(db_conn, sink.id).consecutive_failures >= 2, timeout=30)
    first.kill()  # and volfefe's delivery process crashes meanwhile
    ids += store(db_conn, 3)
    receiver.start()
    deliverers()  # a new process catches up from the cursor
    receiver.wait_distinct(9)

    expected = expected_ids(db_conn, ids)
    got = receiver.ids()
    assert sorted(set(got)) == sorted(expected)
    assert list(dict.fromkeys(got)) == expected  # first arrivals in order
    bodies: dict[str, bytes] = {}
    for message in receiver.received:  # a repeat is the same message, same id
        assert bodies.setdefault(message.id, message.body) == message.body
        message.verified(sink.secret or "")
    recovered = eventually(lambda: (s := get_sink(db_conn, sink.id)).delivered >= 9 and s)
    assert recovered.consecutive_failures == 0 and recovered.failures >= 2


def test_one_failing_sink_of_ten_does_not_hold_back_the_others(
    db_conn: psycopg.Connection[Any], receivers: Receivers, deliverers: Deliverers
) -> None:
    healthy = [receivers() for _ in range(9)]
    failing = receivers(status=500)
    sinks = [webhook(db_conn, receiver) for receiver in [*healthy, failing]]
    deliverers()
    ids = store(db_conn, 10)
    expected = expected_ids(db_conn, ids)
    for receiver in healthy:
        receiver.wait_distinct(10)
        assert receiver.ids() == expected
    assert failing.received == []
    unhealthy = eventually(lambda: get_sink(db_conn, sinks[-1].id).consecutive_failures >= 3)
    assert unhealthy
    assert get_sink(db_conn, sinks[-1].id).state(3) == "unhealthy"
    assert get_sink(db_conn, sinks[-1].id).last_error == "HTTP 500 from the webhook"
    failing.status = 200  # it recovers: everything it missed arrives, in order
    failing.wait_distinct(10)
    assert failing.ids() == expected


def test_a_paused_sink_gets_nothing_until_resumed(
    db_conn: psycopg.Connection[Any], receivers: Receivers, deliverers: Deliverers
) -> None:
    paused, control = receivers(), receivers()
    sink = webhook(db_conn, paused)
    webhook(db_conn, control)
    set_paused(db_conn, sink.id, True)
    deliverers()
    ids = store(db_conn, 4)
    control.wait_distinct(4)  # delivery ran...
    assert paused.attempts == []  # ...and sent nothing to the paused sink
    assert get_sink(db_conn, sink.id).delivered == 0
    set_paused(db_conn, sink.id, False)
    paused.wait_distinct(4)
    assert paused.ids() == expected_ids(db_conn, ids)


def test_a_reclassification_is_sent_again_as_a_new_version(
    db_conn: psycopg.Connection[Any], receivers: Receivers, deliverers: Deliverers
) -> None:
    receiver = receivers()
    webhook(db_conn, receiver)
    deliverers()
    [first] = store(db_conn, 1)
    receiver.wait_distinct(1)
    content_id = receiver.received[0].json()["data"]["post"]["id"]
    replace_classification(db_conn, content_id, Classification("positive", 0.9, "m@2"))
    receiver.wait_distinct(2)
    before, after = receiver.received[0], receiver.received[-1]
    assert before.id != after.id and after.id == expected_ids(db_conn, [first])[0]
    again = after.json()["data"]["classification"]
    assert (again["id"], again["sentiment"], again["model_version"]) == (first, "positive", "m@2")
    assert again["version"] > before.json()["data"]["classification"]["version"]


def test_filters_choose_the_results_a_sink_gets(
    db_conn: psycopg.Connection[Any], receivers: Receivers, deliverers: Deliverers
) -> None:
    picky, control = receivers(), receivers()
    webhook(db_conn, picky, sentiments=["positive"], min_confidence=0.8, sources=["jobs-test"])
    webhook(db_conn, control)
    deliverers()
    wanted = store(db_conn, 2, "positive", 0.9)
    store(db_conn, 2, "positive", 0.5)  # not sure enough
    store(db_conn, 2, "negative", 0.95)  # another sentiment
    wanted += store(db_conn, 1, "positive", 0.8)
    control.wait_distinct(7)
    picky.wait_distinct(3)
    assert picky.ids() == expected_ids(db_conn, wanted)


def test_two_delivery_processes_send_each_message_once(
    db_conn: psycopg.Connection[Any], receivers: Receivers, deliverers: Deliverers
) -> None:
    targets = [receivers() for _ in range(3)]
    for receiver in targets:
        webhook(db_conn, receiver)
    deliverers()
    deliverers()
    wait_delivering(db_conn, 2)  # both running before the first result lands
    ids = store(db_conn, 20)
    expected = expected_ids(db_conn, ids)
    for receiver in targets:
        receiver.wait_distinct(20)
    for receiver in targets:
        assert receiver.ids() == expected  # once each, in order, whichever process sent it
