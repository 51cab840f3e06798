"""How a job worker talks to PostgreSQL: few round trips, and no wait for the WAL flush.

```
procrastinate's pool   autocommit (each of its queries is one statement: no BEGIN/COMMIT
                       round trips), no liveness check per checkout
classify_post's pool   autocommit, no liveness check (volfefe.jobs.runner opens it)
every connection       synchronous_commit=off; a client-side deadline on each statement
                       (volfefe.store.deadline), so a frozen server cannot hold a job
```

Commits do not wait for the WAL flush: a flush costs milliseconds per commit, three commits
per job, and nothing it protects can be lost. If the server crashes within that window, a
lost fetch leaves the job waiting, a lost result or finish leaves it running, and the
stalled-job rescue runs it again. What the writer committed (the post and its job) keeps the
writer's durability. A connection the database dropped fails its next query instead of being
checked first; the runner then starts procrastinate again with a fresh pool, as after a
database restart.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any, LiteralString

import procrastinate
import psycopg
from procrastinate.exceptions import ConnectorException
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed, PoolTimeout

from volfefe.store.connect import make_async_pool, make_pool
from volfefe.store.deadline import AsyncLimitedConnection

WORKER_OPTIONS = "-c synchronous_commit=off"  # libpq options of every job-worker connection
APPLICATION_NAME = "volfefe jobs"
# Jobs hold a connection only to load a post and to store its result (one round trip each).
DB_POOL_SIZE = 8
# SQLSTATE classes of a lost server: connection exception, operator intervention (shutdown)
LOST_SQLSTATES = ("08", "57P")

logger = logging.getLogger(__name__)


def worker_url(url: str) -> str:
    """`url` with the job worker's session options added to the ones it has already (the
    statement timeout of `volfefe.store.connect.with_limits`, say), never replacing them.

    >>> worker_url("dbname=v options='-c statement_timeout=1000'")
    "dbname=v options='-c statement_timeout=1000 -c synchronous_commit=off'"
    """
    params = conninfo_to_dict(url)
    options = str(params.get("options") or "")
    if "synchronous_commit" not in options:
        params["options"] = f"{options} {WORKER_OPTIONS}".strip()
    return make_conninfo("", **params)


def unchecked_pool(**kwargs: Any) -> AsyncConnectionPool[Any]:
    """procrastinate's pool without its per-checkout liveness round trip, whose connections
    (its listener's too) have the client-side deadline."""
    kwargs["check"] = None
    kwargs["connection_class"] = AsyncLimitedConnection
    return AsyncConnectionPool(**kwargs)


async def use_autocommit(conn: psycopg.AsyncConnection[Any]) -> None:
    """Configure a new connection of procrastinate's pool (and its listener) for autocommit."""
    await conn.set_autocommit(True)


def open_db_pool(url: str, size: int) -> ConnectionPool[Any]:
    """The tasks' pool (opening in the background); broken connections are replaced after a
    restart (checked per checkout)."""
    pool = make_pool(worker_url(url), size=size, name=APPLICATION_NAME, timeout=30.0)
    pool.open(wait=False)
    return pool


def open_async_db_pool(url: str, size: int) -> AsyncConnectionPool[Any]:
    """The pool classify_post uses (not opened); a connection broken by a database restart is
    discarded when its job fails (a transient error: the job is retried)."""
    return make_async_pool(worker_url(url), size=size, name=APPLICATION_NAME, timeout=30.0)


class WorkerConnector(procrastinate.PsycopgConnector):
    """procrastinate's connector, saying at once when one of its statements loses the database.

    procrastinate stops its worker when the statement fetching a job fails, but says so only
    once it has shut down: after the running jobs end and a connection (out of reach too)
    unregisters the worker, seconds later. The line written here (WARNING, "the job queue lost
    the database") is the moment the worker knew: once per loss (the jobs finishing in the
    shutdown fail too, at DEBUG), again after a statement has succeeded.
    """

    _lost = False  # a statement lost the database and none has succeeded since

    async def execute_query_async(self, query: LiteralString, **arguments: Any) -> None:
        """procrastinate's statement, its loss of the database logged as it happens."""
        with self._watch():
            await super().execute_query_async(query, **arguments)

    async def execute_query_one_async(
        self, query: LiteralString, **arguments: Any
    ) -> dict[str, Any]:
        """procrastinate's statement, its loss of the database logged as it happens."""
        with self._watch():
            row: dict[str, Any] = await super().execute_query_one_async(query, **arguments)
        return row

    async def execute_query_all_async(
        self, query: LiteralString, **arguments: Any
    ) -> list[dict[str, Any]]:
        """procrastinate's statement, its loss of the database logged as it happens."""
        with self._watch():
            rows: list[dict[str, Any]] = await super().execute_query_all_async(query, **arguments)
        return rows

    @contextlib.contextmanager
    def _watch(self) -> Iterator[None]:
        try:
            yield
        except ConnectorException as exc:
            cause = exc.__cause__
            if lost_the_database(cause):
                level = logging.DEBUG if self._lost else logging.WARNING
                self._lost = True
                why = f"{type(cause).__name__}: {str(cause).strip()}"
                logger.log(level, "the job queue lost the database (%s)", why)
            raise
        self._lost = False


def lost_the_database(error: BaseException | None) -> bool:
    """Whether `error` says the server is out of reach or going away (not a bad statement,
    nor the pool's own errors: closed by us, or no connection free in time).

    >>> lost_the_database(psycopg.OperationalError("server closed the connection"))
    True
    >>> lost_the_database(psycopg.errors.QueryCanceled("canceling statement"))
    False
    >>> lost_the_database(PoolTimeout("couldn't get a connection after 30.00 sec"))
    False
    """
    if not isinstance(error, psycopg.OperationalError) or isinstance(
        error, PoolTimeout | PoolClosed
    ):
        return False
    sqlstate = error.sqlstate
    return sqlstate is None or sqlstate.startswith(LOST_SQLSTATES)
