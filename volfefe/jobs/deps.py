"""What the tasks of one job-worker process share, and the one way to get them.

`jobs worker` (volfefe.jobs.runner) opens them before the first job and passes them in the
job context; under procrastinate's own `procrastinate worker`, which passes none,
`SharedDeps` makes one set on first use in the process and closes it at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from procrastinate import JobContext
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from volfefe.classify.coalesce import Coalescer
from volfefe.config import Settings
from volfefe.jobs.connections import DB_POOL_SIZE, open_async_db_pool, open_db_pool
from volfefe.supervisor.classifier import Classifier
from volfefe.supervisor.pull import pulled_settings


@dataclass
class JobDeps:
    """What the tasks of one job-worker process share."""

    classifier: Classifier
    db: ConnectionPool[Any]
    settings: Settings
    # for classify_post, which runs on the event loop; made on that loop when None
    adb: AsyncConnectionPool[Any] | None = None
    # classify_post's loads and stores, over `adb` (made with it)
    coalescer: Coalescer | None = None
    # stops the job worker (set by `jobs worker`; procrastinate's own worker has none)
    stop: Callable[[], None] | None = None


def make_coalescer(adb: AsyncConnectionPool[Any], settings: Settings) -> Coalescer:
    """classify_post's loads and stores over `adb`, coalesced unless `jobs_coalesce` is off."""
    return Coalescer(adb, coalesce=settings.jobs_coalesce == "on")


class SharedDeps:
    """The tasks' `JobDeps`: those `jobs worker` passes in the job context, or else (under
    procrastinate's own `procrastinate worker`, which passes none) one set made on first use
    in this process and closed at its exit."""

    def __init__(self, settings: Settings, url: str) -> None:
        self._settings = settings
        self._url = url
        self._lock = threading.Lock()
        self._async_lock = asyncio.Lock()
        self._made: JobDeps | None = None

    async def aget(self, context: JobContext) -> JobDeps:
        """`get`, plus the async connection pool of classify_post (opened on this loop) and
        its coalescer."""
        given = context.additional_context.get("volfefe")
        if isinstance(given, JobDeps) and given.coalescer is not None:
            return given  # `jobs worker` opened its pool before any job: no thread hop
        deps = await asyncio.to_thread(self.get, context)
        async with self._async_lock:
            if deps.adb is None:
                adb = open_async_db_pool(self._url, DB_POOL_SIZE)
                await adb.open(wait=False)
                deps.adb = adb
            if deps.coalescer is None:
                deps.coalescer = make_coalescer(deps.adb, deps.settings)
        return deps

    def get(self, context: JobContext) -> JobDeps:
        """The deps for a task running in `context`."""
        given = context.additional_context.get("volfefe")
        if isinstance(given, JobDeps):
            return given
        with self._lock:
            if self._made is None:
                settings = pulled_settings(self._settings, progress=False)  # before any child
                db = open_db_pool(self._url, 4)
                self._made = JobDeps(Classifier(settings), db, settings)
                atexit.register(self._close)
            return self._made

    def _close(self) -> None:
        if self._made is not None:
            self._made.db.close()
            self._made.classifier.close()
