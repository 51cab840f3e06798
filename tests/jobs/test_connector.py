"""procrastinate's connector says "the job queue lost the database" as a statement loses it,
not seconds later when procrastinate's worker has shut down; a bad statement is not a loss."""

from __future__ import annotations

import logging

import procrastinate
import psycopg
import pytest

from volfefe.config import Settings
from volfefe.jobs.app import make_app

LOST = "the job queue lost the database"
TERMINATE_OTHERS = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


async def test_a_statement_cut_off_by_the_server_is_logged_as_it_fails(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(Settings(), database_url)
    connector = app.connector
    async with app.open_async():
        await connector.execute_query_one_async("SELECT 1 AS one")  # the pool has connections
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(TERMINATE_OTHERS)
        with (
            caplog.at_level(logging.WARNING),
            pytest.raises(procrastinate.exceptions.ConnectorException),
        ):
            await connector.execute_query_one_async("SELECT 1 AS one")
    lost = [r.getMessage() for r in caplog.records if LOST in r.getMessage()]
    assert lost and "AdminShutdown" in lost[0], caplog.text


async def test_a_bad_statement_is_not_a_lost_database(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(Settings(), database_url)
    async with app.open_async():
        with (
            caplog.at_level(logging.WARNING),
            pytest.raises(procrastinate.exceptions.ConnectorException),
        ):
            await app.connector.execute_query_async("SELECT 1 / 0")
        with pytest.raises(procrastinate.exceptions.ConnectorException):
            await app.connector.execute_query_all_async("SELECT * FROM no_such_table")
    assert LOST not in caplog.text
