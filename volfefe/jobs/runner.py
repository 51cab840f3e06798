"""The job-worker process: procrastinate's worker, our signals, and restarts.

```
jobs worker ── procrastinate worker (event loop: LISTEN for new jobs, fetch, heartbeat)
                 │ classify_post is async: it awaits the children without holding a thread
                 │ or a connection, so many jobs are in flight and batches stay full
                 ├── one Classifier per process (the supervised children)
                 ├── an AsyncConnectionPool for classify_post (DB_POOL_SIZE connections),
                 │   its loads and stores coalesced across the jobs (volfefe.classify.coalesce)
                 └── a psycopg ConnectionPool for attempt records and the periodic tasks
           ── watcher: the classifier failed jobs_max_rebuilds rebuilds in a row?
                 -> stop gracefully, exit 3 (PoolBroken): the service manager restarts us
                 its children can no longer start at all (ConfigError, e.g. a model folder
                 broken after the start)? -> stop gracefully, exit 2 (ConfigError)
```
When the database goes away while a job ends, procrastinate's task for that job fails with the
database error and nobody reads it (asyncio would log "Task exception was never retrieved"):
the worker's loop reads and logs it (`_read_job_tasks`); the job is rescued later.

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

from volfefe.config import Settings
from volfefe.errors import PoolBroken
from volfefe.jobs.app import MAINTENANCE_QUEUE, make_app
from volfefe.jobs.connections import DB_POOL_SIZE, open_async_db_pool, open_db_pool
from volfefe.jobs.deps import JobDeps, make_coalescer
from volfefe.jobs.queue import QUEUE
from volfefe.supervisor.classifier import Classifier

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
PROCRASTINATE_JOB_TASK = "Worker._process_job"  # the coroutine of procrastinate's job tasks
WATCH_INTERVAL = 0.5  # seconds between looks at the classifier's health
CANCEL_MARGIN = 3.0  # seconds after the grace before procrastinate cancels running jobs
QUEUES = (QUEUE, MAINTENANCE_QUEUE)  # what a job worker fetches from (by priority, then id)


async def run_worker(settings: Settings, url: str, concurrency: int) -> None:
    """Run a job worker until SIGTERM/SIGINT.

    The first signal stops fetching and closes the classifier: running jobs get
    `shutdown_grace` seconds, then their classifier calls fail with PoolClosed (so a sync
    task cannot outlive the grace either), the children stop, and the jobs are queued again.
    A second signal ends the process at once (jobs left running are rescued later). Any
    other end of procrastinate's worker (it stops itself when its listener or heartbeat loses
    the database) starts it again, so a database restart is survived. When the classifier
    cannot be rebuilt `jobs_max_rebuilds` times in a row, the worker stops the same graceful
    way and raises PoolBroken (exit status 3), so its service manager restarts it instead of
    leaving a process that fails every job; when its children can no longer start at all
    (the classifier's ConfigError) it stops and raises that (exit status 2), and the jobs in
    flight come back later (a ConfigError from a call is transient for a job). The signal
    handlers are ours alone: procrastinate's are turned off.
    """
    app = make_app(settings, url)
    classifier = Classifier(settings)
    db = open_db_pool(url, 4)
    adb = open_async_db_pool(url, DB_POOL_SIZE)
    await adb.open(wait=False)
    coalescer = make_coalescer(adb, settings)
    deps = JobDeps(classifier, db, settings, adb, coalescer)
    stopping = asyncio.Event()
    gave_up: list[PoolBroken] = []
    loop = asyncio.get_running_loop()
    current: asyncio.Task[None] | None = None
    closing: asyncio.Task[None] | None = None

    async def close_after_grace() -> None:
        # Jobs already running may still make their classifier call during the grace (a
        # closed classifier would refuse it); what is left then fails with PoolClosed.
        task = current
        if task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                async with asyncio.timeout(settings.shutdown_grace):
                    await asyncio.shield(task)
        await classifier.aclose(grace=0)

    def stop() -> None:
        nonlocal closing
        if stopping.is_set():
            return
        stopping.set()
        for sig in SIGNALS:  # a second signal now gets the default: stop at once
            loop.remove_signal_handler(sig)
        if current is not None:
            current.cancel()  # procrastinate stops fetching and waits for running jobs
        closing = asyncio.create_task(close_after_grace())  # ...which get the grace, no more

    async def watch_classifier() -> None:
        while not stopping.is_set():
            await asyncio.sleep(WATCH_INTERVAL)
            failures = rebuild_failures(classifier)
            if classifier.config_error is not None:  # a job may have seen it first
                stop()
            elif failures >= settings.jobs_max_rebuilds:
                why = f"the classifier could not be rebuilt ({failures} times in a row)"
                gave_up.append(
                    PoolBroken(
                        f"{why}; the job worker stops so that its service manager restarts it"
                    )
                )
                logger.error("%s", gave_up[0])
                stop()

    deps.stop = stop  # a job that meets the classifier's ConfigError stops us at once
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop)
    task_factory = loop.get_task_factory()
    loop.set_task_factory(_read_job_tasks)
    watcher = asyncio.create_task(watch_classifier())
    try:
        await _start_unless_stopped(classifier, stopping)
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
        watcher.cancel()
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
        db.close()
        with contextlib.suppress(TimeoutError):  # a statement of jobs cut off by the stop
            async with asyncio.timeout(CANCEL_MARGIN):
                await coalescer.wait_idle()
        await adb.close()
        logger.info("job loads: %s; job stores: %s", coalescer.loads, coalescer.stores)
        await (closing or classifier.aclose())
        loop.set_task_factory(task_factory)
    if gave_up:
        raise gave_up[0]
    if (error := classifier.config_error) is not None:
        logger.error("the job worker stopped: %s", error)
        raise error


async def _start_unless_stopped(classifier: Classifier, stopping: asyncio.Event) -> None:
    """Boot the classifier, failing fast when the model cannot load, unless a signal comes
    first: the stop then closes the classifier, which ends the boot at once (a stop never
    waits for a booting child's boot_timeout)."""
    starting = asyncio.ensure_future(asyncio.to_thread(classifier.start))
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait([starting, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if starting.done() and not stopping.is_set():
        starting.result()
        return
    # Stopping: whatever the boot ends with (PoolClosed, most likely) no longer matters.
    starting.add_done_callback(lambda task: task.cancelled() or task.exception())


def _read_job_tasks(
    loop: asyncio.AbstractEventLoop, coro: Any, /, **kwargs: Any
) -> asyncio.Task[Any]:
    """The worker loop's task factory: a procrastinate job task's error is read and logged.

    procrastinate (3.10) never reads the outcome of its task per job; that task fails when
    the job's status cannot be stored (the database went away), and the job stays `doing`
    until `retry_stalled_jobs` rescues it. Any other task is made as asyncio makes it.
    """
    task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, **kwargs)
    if getattr(coro, "__qualname__", "") == PROCRASTINATE_JOB_TASK:
        task.add_done_callback(_log_job_task_failure)
    return task


def _log_job_task_failure(task: asyncio.Task[Any]) -> None:
    if task.cancelled() or (exc := task.exception()) is None:
        return
    logger.warning(
        "%s: its end could not be recorded (%s: %s); the job is rescued once this worker "
        "is seen stopped",
        task.get_name(),
        type(exc).__name__,
        str(exc).strip() or repr(exc),
        exc_info=exc if logger.isEnabledFor(logging.DEBUG) else None,
    )


def rebuild_failures(classifier: Classifier) -> int:
    """How many times in a row the classifier failed to rebuild its broken pool."""
    return classifier.consecutive_rebuild_failures


async def _run_procrastinate(app: procrastinate.App, deps: JobDeps, concurrency: int) -> None:
    settings = deps.settings
    async with app.open_async():
        await app.run_worker_async(
            queues=list(QUEUES),
            concurrency=concurrency,
            additional_context={"volfefe": deps},
            # The classifier fails calls still running after the grace with PoolClosed; this
            # margin lets each job record that before procrastinate cancels what is left.
            shutdown_graceful_timeout=settings.shutdown_grace + CANCEL_MARGIN,
            update_heartbeat_interval=settings.jobs_heartbeat,
            stalled_worker_timeout=settings.jobs_stalled_after,
            fetch_job_polling_interval=settings.jobs_poll_interval,
            install_signal_handlers=False,
        )
