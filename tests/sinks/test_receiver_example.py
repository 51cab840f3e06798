"""The receiver of docs/sinks.md, run as it is printed there: it verifies volfefe's
signature, prints each result, and refuses a message signed with another secret."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import ROOT
from tests.helpers import eventually
from tests.sinks.conftest import DeliverProcess, expected_ids, store
from tests.web.conftest import free_port
from volfefe.sinks.definition import SinkSpec, new_secret
from volfefe.sinks.event import Event
from volfefe.sinks.table import add_sink
from volfefe.sinks.transport import signed_headers

pytestmark = pytest.mark.db


def example() -> str:
    """The first Python block of docs/sinks.md."""
    text = (ROOT / "docs" / "sinks.md").read_text()
    found = re.search(r"```python\n(.*?)```", text, re.S)
    assert found is not None
    return found.group(1)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_documented_receiver_verifies_and_prints_each_result(
    db_conn: psycopg.Connection[Any],
    deliverers: Callable[..., DeliverProcess],
    tmp_path: Path,
) -> None:
    script = tmp_path / "receiver.py"
    script.write_text(example())
    secret, port = new_secret(), free_port()
    env = {**os.environ, "VOLFEFE_WEBHOOK_SECRET": secret, "PORT": str(port)}
    receiver = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        eventually(lambda: receiver.poll() is not None or listening(port), timeout=30)
        assert receiver.poll() is None
        url = f"http://127.0.0.1:{port}/volfefe"
        forged = Event("msg_1_1", b'{"type": "classification.stored"}')
        headers = signed_headers(new_secret(), forged, datetime.now(UTC))
        assert httpx.post(url, content=forged.body, headers=headers).status_code == 401

        add_sink(db_conn, SinkSpec.webhook(url, secret=secret))
        deliverers()
        ids = store(db_conn, 2)
        assert receiver.stdout is not None
        lines = [receiver.stdout.readline().decode().rstrip("\n") for _ in ids]
        first, second = expected_ids(db_conn, ids)
        assert lines == [f"{first} negative 0.75 post 0", f"{second} negative 0.75 post 1"]
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
        if receiver.stdout is not None:
            receiver.stdout.close()
