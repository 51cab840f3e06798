"""`python -m volfefe sinks ...` as users run it: output, exit codes, typed errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.sinks.conftest import DELIVER_ENV, DeliverProcess, store, wait_delivering
from tests.sinks.receiver import Receiver

pytestmark = pytest.mark.db


def volfefe(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI on the test database."""
    return subprocess.run(
        [sys.executable, "-m", "volfefe", *args],
        env={**os.environ, **DELIVER_ENV, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_add_list_test_pause_resume_remove(
    database_url: str,
    db_conn: psycopg.Connection[Any],
    receivers: Callable[..., Receiver],
) -> None:
    receiver = receivers()
    added = volfefe(
        database_url,
        "sinks",
        "add",
        "--webhook",
        receiver.url,
        "--sentiment",
        "negative,positive",
        "--min-confidence",
        "0.5",
    )
    assert added.returncode == 0, added.stderr
    first, second = added.stdout.splitlines()
    assert first == f"sink 1: webhook {receiver.url}"
    secret = second.removeprefix("secret: ")
    assert secret.startswith("whsec_")

    tested = volfefe(database_url, "sinks", "test", "1")
    assert tested.returncode == 0, tested.stderr
    [message] = receiver.received
    assert message.verified(secret)["type"] == "sink.test"
    assert message.id in tested.stdout

    assert volfefe(database_url, "sinks", "pause", "1").stdout == "sink 1 paused\n"
    listed = volfefe(database_url, "sinks", "list", "--json")
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["id"], row["state"], row["pending"], row["sentiments"]) == (
        1,
        "paused",
        0,
        ["negative", "positive"],
    )
    assert "secret" not in row
    store(db_conn, 2)
    listed = volfefe(database_url, "sinks", "list", "--json")
    row = json.loads(listed.stdout)
    assert row["pending"] == 2 and row["lag_s"] >= 0
    assert volfefe(database_url, "sinks", "resume", "1").stdout == "sink 1 resumed\n"
    assert "1 webhook" in volfefe(database_url, "sinks", "list").stdout
    assert volfefe(database_url, "sinks", "remove", "1").returncode == 0
    assert volfefe(database_url, "sinks", "list").stdout == "no sinks\n"


@pytest.mark.parametrize(
    "args, code, error",
    [
        (["sinks", "remove", "7"], 1, "SinkNotFound: sink 7 not found"),
        (["sinks", "pause", "7"], 1, "SinkNotFound: sink 7 not found"),
        (["sinks", "test", "7"], 1, "SinkNotFound: sink 7 not found"),
        (["sinks", "add", "--webhook", "ftp://desk"], 2, "InvalidSink: the webhook must be"),
        (["sinks", "add", "--webhook", "http://x", "--secret", "nope"], 2, "InvalidSink: the"),
        (["sinks", "add", "--webhook", "http://x", "--sentiment", "bullish"], 2, "InvalidSink"),
        (["sinks", "add", "--nats", "a.*"], 2, "InvalidSink: the subject must be"),
        (["sinks", "add", "--webhook", "http://x", "--nats", "a"], 2, "UsageError: give exactly"),
        (["sinks", "add"], 2, "UsageError: give exactly one of --webhook URL or --nats SUBJECT"),
        (["sinks", "remove", "0"], 2, "UsageError"),
    ],
)
def test_errors_are_typed_with_their_exit_code(
    database_url: str, args: list[str], code: int, error: str
) -> None:
    done = volfefe(database_url, *args)
    assert done.returncode == code, done.stderr
    assert error in done.stderr


def test_a_test_message_nobody_takes_is_delivery_failed(
    database_url: str, receivers: Callable[..., Receiver]
) -> None:
    receiver = receivers(status=503)
    assert volfefe(database_url, "sinks", "add", "--webhook", receiver.url).returncode == 0
    done = volfefe(database_url, "sinks", "test", "1")
    assert done.returncode == 1
    assert done.stderr.strip() == "DeliveryFailed: HTTP 503 from the webhook"
    receiver.stop()
    done = volfefe(database_url, "sinks", "test", "1")
    assert (done.returncode, done.stderr.split(":")[0]) == (1, "DeliveryFailed")


def test_deliver_stops_on_sigterm_with_status_0(
    database_url: str, db_conn: psycopg.Connection[Any], tmp_path: Any
) -> None:
    process = DeliverProcess(database_url, tmp_path / "deliver.log")
    wait_delivering(db_conn)
    process.stop()  # asserts status 0 and a clean log
