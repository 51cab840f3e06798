"""Sinks over HTTP and in /metrics, on a real `serve --with-worker` process whose job worker
delivers (and one with --no-deliver that does not)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.helpers import eventually
from tests.sinks.conftest import expected_ids, store
from tests.sinks.receiver import Receiver
from tests.web.conftest import Serve, Served

pytestmark = pytest.mark.db

FAST = {
    "VOLFEFE_SINK_BACKOFF": "0.05",
    "VOLFEFE_SINK_BACKOFF_MAX": "0.5",
    "VOLFEFE_SINK_UNHEALTHY_AFTER": "2",
    "VOLFEFE_SINK_TIMEOUT": "5",
}


@pytest.fixture(scope="module")
def server(serve: Serve, web_database_url: str) -> Served:
    """A server whose job worker delivers."""
    return serve(web_database_url, "--with-worker", **FAST)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def test_sink_routes_need_the_token(server: Served) -> None:
    with server.client() as anonymous:
        for method, path in (("GET", "/api/v1/sinks"), ("POST", "/api/v1/sinks/1/test")):
            answer = anonymous.request(method, path)
            assert answer.status_code == 401
            assert answer.json()["error"]["type"] == "Unauthorized"


def test_add_deliver_pause_and_remove_over_http(
    api: httpx.Client, conn: psycopg.Connection[Any], receiver: Receiver, server: Served
) -> None:
    added = api.post("/api/v1/sinks", json={"webhook": receiver.url, "sentiments": ["negative"]})
    assert added.status_code == 200, added.text
    sink = added.json()
    assert sink["secret"].startswith("whsec_") and sink["sentiments"] == ["negative"]
    ids = store(conn, 3)  # the server's job worker delivers them
    receiver.wait_distinct(3)
    assert receiver.ids() == expected_ids(conn, ids)
    receiver.received[0].verified(sink["secret"])

    tested = api.post(f"/api/v1/sinks/{sink['id']}/test")
    assert tested.status_code == 200 and tested.json()["delivered"] is True
    paused = api.post(f"/api/v1/sinks/{sink['id']}/pause").json()
    assert (paused["paused"], paused["state"]) == (True, "paused")
    [listed] = [s for s in api.get("/api/v1/sinks").json()["sinks"] if s["id"] == sink["id"]]
    assert listed["delivered"] >= 3 and "secret" not in listed
    metrics = httpx.get(server.base_url + "/metrics").text
    assert f'volfefe_sink_paused{{kind="webhook",sink="{sink["id"]}"}} 1.0' in metrics
    assert f'volfefe_sink_deliveries_total{{kind="webhook",sink="{sink["id"]}"}}' in metrics
    assert api.post(f"/api/v1/sinks/{sink['id']}/resume").json()["paused"] is False
    assert api.delete(f"/api/v1/sinks/{sink['id']}").json() == {"id": sink["id"], "removed": True}
    gone = api.delete(f"/api/v1/sinks/{sink['id']}")
    assert (gone.status_code, gone.json()["error"]["type"]) == (404, "SinkNotFound")


def test_an_unhealthy_sink_shows_in_metrics_and_a_failed_test_is_502(
    api: httpx.Client, conn: psycopg.Connection[Any], receiver: Receiver, server: Served
) -> None:
    receiver.status = 500
    sink = api.post("/api/v1/sinks", json={"webhook": receiver.url}).json()
    store(conn, 1)

    def unhealthy() -> bool:
        [s] = [s for s in api.get("/api/v1/sinks").json()["sinks"] if s["id"] == sink["id"]]
        return s["state"] == "unhealthy"

    eventually(unhealthy, timeout=60)
    metrics = httpx.get(server.base_url + "/metrics").text
    assert f'volfefe_sink_healthy{{kind="webhook",sink="{sink["id"]}"}} 0.0' in metrics
    tested = api.post(f"/api/v1/sinks/{sink['id']}/test")
    assert tested.status_code == 502
    assert tested.json()["error"] == {
        "type": "DeliveryFailed",
        "message": "HTTP 500 from the webhook",
    }
    bad = api.post("/api/v1/sinks", json={"webhook": "ftp://x"})
    assert (bad.status_code, bad.json()["error"]["type"]) == (422, "InvalidSink")
    api.delete(f"/api/v1/sinks/{sink['id']}")
