"""procrastinate's connector says "the job queue lost the database" as a statement loses it,
not seconds later when procrastinate's worker has shut down: once per loss, again after a
statement has succeeded; a bad or cancelled statement is not a loss."""

from __future__ import annotations

import contextlib
import logging

import procrastinate
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from volfefe.config import Settings
from volfefe.jobs.app import make_app
from volfefe.jobs.connections import WorkerConnector

LOST = "the job queue lost the database"
TERMINATE_OTHERS = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


async def _fail_until_one_succeeds(connector: WorkerConnector) -> int:
    """Run statements until one succeeds (the pool replaces the dead connections); how many
    failed."""
    failed = 0
    while True:
        try:
            await connector.execute_query_one_async("SELECT 1 AS one")
            return failed
        except procrastinate.exceptions.ConnectorException:
            failed += 1


async def test_a_lost_database_is_said_once_as_it_happens_and_again_after_a_success(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(Settings(), database_url)
    connector = app.connector
    assert isinstance(connector, WorkerConnector)
    caplog.set_level(logging.DEBUG, logger="volfefe.jobs.connections")
    async with app.open_async():
        for _ in range(2):  # two losses, a success between them
            # three connections held at once: the pool has at least three, all cut below
            async with contextlib.AsyncExitStack() as held:
                for _ in range(3):
                    await held.enter_async_context(connector.pool.connection())
            with psycopg.connect(database_url, autocommit=True) as admin:
                admin.execute(TERMINATE_OTHERS)
            assert await _fail_until_one_succeeds(connector) >= 2
    lost = [r.levelno for r in caplog.records if LOST in r.getMessage()]
    assert lost.count(logging.WARNING) == 2, caplog.text
    assert set(lost) <= {logging.WARNING, logging.DEBUG}


async def test_a_bad_or_cancelled_statement_is_not_a_lost_database(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # every statement of this app's connections is cancelled by the server after 50 ms
    url = make_conninfo(database_url, options="-c statement_timeout=50")
    app = make_app(Settings(), url)
    assert isinstance(app.connector, WorkerConnector)
    caplog.set_level(logging.DEBUG, logger="volfefe.jobs.connections")
    async with app.open_async():
        for statement in ("SELECT 1 / 0", "SELECT * FROM no_such_table", "SELECT pg_sleep(5)"):
            with pytest.raises(procrastinate.exceptions.ConnectorException) as failed:
                await app.connector.execute_query_async(statement)
            assert isinstance(failed.value.__cause__, psycopg.Error)
    assert LOST not in caplog.text
