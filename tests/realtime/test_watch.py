"""`volfefe watch` and `volfefe.store.signals.watch/awatch`: catch up, then every result once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.helpers import eventually
from tests.realtime.watching import WatchProcess, store_results, wait_listening
from volfefe.store.connect import connect
from volfefe.store.signals import awatch, watch

pytestmark = pytest.mark.db


@pytest.fixture
def watchers() -> Iterator[list[WatchProcess]]:
    started: list[WatchProcess] = []
    yield started
    for proc in started:
        proc.stop()


def test_watch_process_prints_new_results_then_catches_up_after_a_restart(
    database_url: str, db_conn: psycopg.Connection[Any], watchers: list[WatchProcess]
) -> None:
    [before] = store_results(db_conn, 1)
    first = WatchProcess(database_url)  # no --since: only what lands from now on
    watchers.append(first)
    wait_listening(db_conn)
    [landed] = store_results(db_conn, 1)
    seen = first.next()
    assert seen["id"] == landed and seen["id"] != before
    assert set(seen) == {
        "id",
        "content_id",
        "sentiment",
        "confidence",
        "model_version",
        "classified_at",
    }
    assert (seen["sentiment"], seen["confidence"], seen["model_version"]) == (
        "negative",
        0.75,
        "m@1",
    )
    first.stop()

    missed = store_results(db_conn, 2)  # stored while nobody watched
    second = WatchProcess(database_url, "--since", str(landed))
    watchers.append(second)
    assert [second.next()["id"], second.next()["id"]] == missed
    wait_listening(db_conn)
    [live] = store_results(db_conn, 1)
    assert second.next()["id"] == live
    second.stop()
    assert second.nothing_more()


def test_a_result_committed_during_the_catch_up_is_yielded_once(
    database_url: str, db_conn: psycopg.Connection[Any]
) -> None:
    """Committed after LISTEN but before the catch-up query: both see it, one yields it."""
    with connect(database_url, autocommit=False) as writer:
        store_results(writer, 1)
        writer.execute("LOCK TABLE classifications IN ACCESS EXCLUSIVE MODE")
        got: list[int] = []
        done = threading.Event()

        def consume() -> None:
            for signal in watch(database_url, since=0, timeout=3):
                got.append(signal.id)
            done.set()

        threading.Thread(target=consume, daemon=True).start()
        eventually(
            lambda: db_conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'volfefe watch'"
                " AND wait_event_type = 'Lock'"
            ).fetchone(),
            timeout=30,
        )
        writer.commit()  # the watcher listens already: the NOTIFY reaches it
    assert done.wait(60)
    assert len(got) == 1


def test_watch_reconnects_and_catches_up(
    database_url: str, db_conn: psycopg.Connection[Any]
) -> None:
    got: list[int] = []
    stream = watch(database_url, since=0, timeout=20)
    [first] = store_results(db_conn, 1)
    got.append(next(stream).id)
    db_conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'volfefe watch' AND datname = current_database()"
    )  # this test's watcher only: other tests' run on the same server at the same time
    during = store_results(db_conn, 2)  # while the watcher's connection is gone
    got += [next(stream).id, next(stream).id]
    stream.close()
    assert got == [first, *during]


async def test_awatch_catches_up_then_follows(
    database_url: str, db_conn: psycopg.Connection[Any]
) -> None:
    old = store_results(db_conn, 2)
    got: list[int] = []

    async def consume() -> None:
        async for signal in awatch(database_url, since=old[0], timeout=5):
            got.append(signal.id)
            if len(got) == 2:
                return

    task = asyncio.create_task(consume())
    await asyncio.to_thread(wait_listening, db_conn)
    [new] = await asyncio.to_thread(store_results, db_conn, 1)
    await asyncio.wait_for(task, 30)
    assert got == [old[1], new]


@pytest.mark.parametrize("kind", ["watch", "awatch"])
def test_results_committed_together_are_all_yielded(
    database_url: str, db_conn: psycopg.Connection[Any], kind: str
) -> None:
    """One transaction storing 5 results sends their notifications in one packet; with a
    timeout, each is yielded (a watch that left `notifies()` after the first lost the rest)."""
    got: list[int] = []
    done = threading.Event()

    async def consume_async() -> None:
        async for signal in awatch(database_url, since=None, timeout=10):
            got.append(signal.id)

    def consume() -> None:
        if kind == "watch":
            got.extend(signal.id for signal in watch(database_url, since=None, timeout=10))
        else:
            asyncio.run(consume_async())
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    wait_listening(db_conn)
    with connect(database_url, autocommit=False) as writer:
        stored = store_results(writer, 5)
        writer.commit()
    assert done.wait(60)
    assert got == stored
