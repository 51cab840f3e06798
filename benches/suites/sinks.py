"""Sink latency: from a stored classification's commit to the webhook's receipt, beside the
NOTIFY of the same commits.

    .venv/bin/python -m benches run sinks [--quick] [--json PATH] [--set VOLFEFE_NAME=VALUE ...]

On a fresh database with one webhook sink (a local asyncio HTTP receiver on this machine) and
one `python -m volfefe deliver` process (default settings), N posts are stored one at a time,
each with its classification in one autocommit INSERT (no model runs: this measures the
delivery path alone). For each: commit returned .. the `volfefe_classified` NOTIFY at a
listener (`notify`), and commit returned .. the signed webhook at the receiver (`webhook`).
Idle: the next post is stored once both have arrived. Host and receiver share one clock.
`--quick`: 20 posts; the full run: 300.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import psycopg

from ..harness.database import database_url, described, fresh_database
from ..harness.logs import log
from ..harness.process import stop_process
from ..harness.settings import clear_volfefe_env, offline_env
from ..harness.stats import nearest_rank
from ..harness.suite import Outcome, Suite
from ..harness.tables import markdown_table

FULL, QUICK = 300, 20
WAIT = 60.0  # seconds one post's two signals may take before the run fails
STORE = """
WITH post AS (
    INSERT INTO contents (source_id, external_id, text) VALUES (%(s)s, %(e)s, 'bench')
    RETURNING id
)
INSERT INTO classifications (content_id, sentiment, confidence, model_version)
SELECT id, 'negative', 0.9, 'bench@1' FROM post RETURNING id
"""


class Arrivals:
    """Receipt times (epoch seconds) by classification id, from the receiver and listener."""

    def __init__(self) -> None:
        self.webhook: dict[int, float] = {}
        self.notify: dict[int, float] = {}
        self.changed = threading.Condition()

    def record(self, where: dict[int, float], key: int, at: float) -> None:
        """Keep the first arrival of `key`."""
        with self.changed:
            where.setdefault(key, at)
            self.changed.notify_all()

    def wait(self, key: int) -> None:
        """Until both signals of `key` arrived (TimeoutError after WAIT seconds)."""
        with self.changed:
            done = self.changed.wait_for(
                lambda: key in self.webhook and key in self.notify, timeout=WAIT
            )
        if not done:
            raise TimeoutError(f"classification {key}: no webhook or NOTIFY within {WAIT} s")


class Receiver:
    """A minimal HTTP server on a thread: each POST's classification id and receipt time."""

    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self.loop
        ).result(10)
        self.server = server
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            at = time.time()
            length = 0
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = orjson.loads(await reader.readexactly(length))
            if body["type"] == "classification.stored":
                key = int(body["data"]["classification"]["id"])
                self.arrivals.record(self.arrivals.webhook, key, at)
            writer.write(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()

    def close(self) -> None:
        """Stop the server and its thread."""

        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def listen(url: str, arrivals: Arrivals, stop: threading.Event) -> threading.Thread:
    """LISTEN volfefe_classified on a thread; record each id's receipt time."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("LISTEN volfefe_classified")

    def run() -> None:
        with conn:
            while not stop.is_set():
                for note in conn.notifies(timeout=0.2):
                    key = int(orjson.loads(note.payload)["id"])
                    arrivals.record(arrivals.notify, key, time.time())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p99 and max in ms."""
    p50, p99 = nearest_rank(values, 50), nearest_rank(values, 99)
    return {
        "p50_ms": round(p50, 2) if p50 is not None else None,
        "p99_ms": round(p99, 2) if p99 is not None else None,
        "max_ms": round(max(values), 2) if values else None,
    }


def measure(url: str, env: Mapping[str, str], posts: int, workdir: Path) -> dict[str, Any]:
    """Store `posts` results one at a time; both latencies of each."""
    from volfefe.sinks.definition import SinkSpec
    from volfefe.sinks.table import add_sink
    from volfefe.store.connect import connect
    from volfefe.store.migrate import migrate

    arrivals = Arrivals()
    receiver = Receiver(arrivals)
    stop = threading.Event()
    listener = listen(url, arrivals, stop)
    with connect(url) as conn:
        migrate(conn)  # a DATABASE_URL server's fresh database is not migrated yet
        add_sink(conn, SinkSpec.webhook(receiver.url, secret=None))
    out = (workdir / "deliver.log").open("wb")
    deliver = subprocess.Popen(
        [sys.executable, "-m", "volfefe", "deliver"], env=dict(env), stdout=out, stderr=out
    )
    webhook, notify = [], []
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("INSERT INTO sources (name) VALUES ('bench') RETURNING id")
            source = int(row.fetchall()[0][0])
            for i in range(posts + 1):  # the first one warms the path up, not counted
                cur = conn.execute(STORE, {"s": source, "e": uuid.uuid4().hex})
                committed = time.time()
                key = int(cur.fetchall()[0][0])
                arrivals.wait(key)
                if i:
                    webhook.append((arrivals.webhook[key] - committed) * 1000)
                    notify.append((arrivals.notify[key] - committed) * 1000)
    finally:
        stop_process(deliver)
        out.close()
        stop.set()
        listener.join(10)
        receiver.close()
    return {"posts": posts, "webhook": percentiles(webhook), "notify": percentiles(notify)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options of its own."""


def run(args: argparse.Namespace, settings: Mapping[str, str]) -> Outcome:
    """One idle run; the table on stdout."""
    settings_env = dict(settings)
    clear_volfefe_env()
    offline_env()
    posts = QUICK if args.quick else FULL
    with (
        tempfile.TemporaryDirectory(prefix="volfefe-sinks-") as tmp,
        fresh_database(Path(tmp), "sinks") as db_env,
    ):
        url = database_url(db_env, migrate=True)
        env = {**os.environ, **db_env, **settings_env, "DATABASE_URL": url}
        report = measure(url, env, posts, Path(tmp))
    report["database"] = described()
    report["quick"] = args.quick
    log(
        f"sinks: webhook p50 {report['webhook']['p50_ms']} ms, notify p50 "
        f"{report['notify']['p50_ms']} ms"
    )
    rows = [{"signal": name, "posts": posts, **report[name]} for name in ("notify", "webhook")]
    header = ["signal", "posts", "p50 ms", "p99 ms", "max ms"]
    cells = [[r["signal"], r["posts"], r["p50_ms"], r["p99_ms"], r["max_ms"]] for r in rows]
    print("\n".join(markdown_table(header, "lrrrr", cells)))
    return Outcome(report, rows)


SUITE = Suite(
    name="sinks",
    description="Sink latency: a stored classification's commit to the webhook's receipt, "
    "beside its NOTIFY.",
    add_arguments=add_arguments,
    run=run,
)
