"""The job-worker process: procrastinate's worker, our signals, and restarts.

```
jobs worker ── procrastinate worker (event loop: LISTEN for new jobs, fetch, heartbeat)
                 │ classify_post is async: it awaits the children without holding a thread
                 │ or a connection, so many jobs are in flight and batches stay full
                 ├── one Classifier per process (the supervised children)
                 ├── an AsyncConnectionPool for classify_post (DB_POOL_SIZE connections)
                 └── a psycopg ConnectionPool for attempt records and the periodic tasks
```
A new job wakes the worker through procrastinate's NOTIFY (its insert trigger, also when the
job comes from volfefe's triggers on `contents`); `jobs_poll_interval` only bounds what a
missed notification costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import procrastinate
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from volfefe.config import Settings
from volfefe.jobs.app import MAINTENANCE_QUEUE, JobDeps, make_app
from volfefe.jobs.connections import WORKER_SESSION
from volfefe.jobs.queue import QUEUE
from volfefe.supervisor.classifier import Classifier

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Jobs hold a connection only to load a post and to store its result (one round trip each).
DB_POOL_SIZE = 8


def open_db_pool(url: str, size: int) -> ConnectionPool[Any]:
    """A connection pool for the tasks; broken connections are replaced after a restart."""
    pool: ConnectionPool[Any] = ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        open=False,
        check=ConnectionPool.check_connection,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "application_name": "volfefe jobs",
            **WORKER_SESSION,
        },
        timeout=30.0,
    )
    pool.open(wait=False)
    return pool


def open_async_db_pool(url: str, size: int) -> AsyncConnectionPool[Any]:
    """The pool classify_post uses; a connection broken by a database restart is discarded
    when its job fails (a transient error: the job is retried)."""
    return AsyncConnectionPool(
        url,
        min_size=1,
        max_size=size,
        open=False,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "application_name": "volfefe jobs",
            **WORKER_SESSION,
        },
        timeout=30.0,
    )


async def run_worker(settings: Settings, url: str, concurrency: int) -> None:
    """Run a job worker until SIGTERM/SIGINT.

    The first signal stops fetching and gives running jobs `shutdown_grace` seconds, then the
    children stop; a second one ends the process at once (jobs left running are rescued later
    elsewhere). Any other end of procrastinate's worker (it stops itself when its listener or
    heartbeat loses the database) starts it again, so a database restart is survived. The
    signal handlers are ours alone: procrastinate's are turned off.
    """
    app = make_app(settings, url)
    classifier = Classifier(settings)
    db = open_db_pool(url, 4)
    adb = open_async_db_pool(url, DB_POOL_SIZE)
    await adb.open(wait=False)
    deps = JobDeps(classifier, db, settings, adb)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    current: asyncio.Task[None] | None = None

    def on_signal() -> None:
        stopping.set()
        for sig in SIGNALS:  # a second signal now gets the default: stop at once
            loop.remove_signal_handler(sig)
        if current is not None:
            current.cancel()  # procrastinate then stops gracefully within the grace

    for sig in SIGNALS:
        loop.add_signal_handler(sig, on_signal)
    try:
        await asyncio.to_thread(classifier.start)  # fail fast when the model cannot load
        while not stopping.is_set():
            current = asyncio.create_task(_run_procrastinate(app, deps, concurrency))
            try:
                await current
            except asyncio.CancelledError:
                if not stopping.is_set():
                    raise
            except (psycopg.OperationalError, procrastinate.exceptions.ConnectorException) as exc:
                logger.warning("job worker lost the database (%s); starting again", exc)
            if stopping.is_set():
                break
            logger.warning("job worker stopped by itself (it lost the database?); starting again")
            await asyncio.to_thread(db.check)  # drop pooled connections that died meanwhile
            await adb.check()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(settings.jobs_heartbeat, 2.0)):
                    await stopping.wait()
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
        db.close()
        await adb.close()
        await classifier.aclose()


async def _run_procrastinate(app: procrastinate.App, deps: JobDeps, concurrency: int) -> None:
    settings = deps.settings
    async with app.open_async():
        await app.run_worker_async(
            queues=[QUEUE, MAINTENANCE_QUEUE],
            concurrency=concurrency,
            additional_context={"volfefe": deps},
            shutdown_graceful_timeout=settings.shutdown_grace,
            update_heartbeat_interval=settings.jobs_heartbeat,
            stalled_worker_timeout=settings.jobs_stalled_after,
            fetch_job_polling_interval=settings.jobs_poll_interval,
            install_signal_handlers=False,
        )
