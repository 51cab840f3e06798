"""Background classification on procrastinate: the app, the tasks and the job worker.

```
jobs worker ── procrastinate worker (event loop: fetch, heartbeat, periodic deferrer)
                 │ classify_post runs in a thread (sync task), so inference never blocks
                 │ the loop or the heartbeat
                 ├── one Classifier per process (the supervised children)
                 └── a psycopg ConnectionPool (concurrency + 2 connections)
periodic (each fires once per tick, however many workers): enqueue unclassified (hourly),
prune finished jobs (daily), rescue jobs of workers that stopped beating (every minute)
```

Attempts: `jobs_max_attempts` in total (procrastinate's `max_attempts` counts retries, so it
gets one less), exponential backoff, retried only for transient errors (worker errors,
database errors). Not found / no text end the job as failed at once; already classified ends
it as succeeded. Each attempt's outcome and error text go to `volfefe_job_attempts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import procrastinate
import psycopg
from procrastinate import JobContext, RetryStrategy
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from volfefe.classifier import Classifier
from volfefe.config import Settings
from volfefe.errors import (
    AlreadyClassified,
    DatabaseUnavailable,
    PoolClosed,
    VolfefeError,
    WorkerError,
)
from volfefe.intelligence import classify_content
from volfefe.job_queue import QUEUE, TASK, enqueue, prune, record_attempt, unclassified_ids

logger = logging.getLogger("volfefe.jobs")

MAINTENANCE_QUEUE = "volfefe_maintenance"
SIGNALS = (signal.SIGTERM, signal.SIGINT)
TRANSIENT: tuple[type[Exception], ...] = (
    WorkerError,
    DatabaseUnavailable,
    PoolClosed,
    psycopg.OperationalError,
)


@dataclass
class JobDeps:
    """What the tasks of one job-worker process share."""

    classifier: Classifier
    db: ConnectionPool[Any]
    settings: Settings


def make_app(settings: Settings, url: str) -> procrastinate.App:
    """A procrastinate app on `url` with volfefe's tasks and periodic tasks registered."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    retry = RetryStrategy(
        max_attempts=settings.jobs_max_attempts - 1,
        exponential_wait=settings.jobs_backoff,
        retry_exceptions=set(TRANSIENT),
    )

    @app.task(name=TASK, queue=QUEUE, pass_context=True, retry=retry)
    def classify_post(context: JobContext, content_id: int) -> None:
        deps: JobDeps = context.additional_context["volfefe"]
        job = context.job
        assert job.id is not None
        attempt = job.attempts + 1
        try:
            with deps.db.connection() as conn:
                classify_content(conn, deps.classifier, content_id)
        except AlreadyClassified:
            _record(deps, job.id, content_id, attempt, "already_classified")
            return
        except Exception as exc:
            last = not isinstance(exc, TRANSIENT) or attempt >= settings.jobs_max_attempts
            _record(deps, job.id, content_id, attempt, "failed" if last else "retrying", exc)
            raise
        _record(deps, job.id, content_id, attempt, "classified")

    if settings.jobs_enqueue_cron != "off":

        @app.periodic(cron=settings.jobs_enqueue_cron, periodic_id="enqueue-unclassified")
        @app.task(name="volfefe.enqueue_unclassified", queue=MAINTENANCE_QUEUE, pass_context=True)
        def enqueue_unclassified(context: JobContext, timestamp: int) -> None:
            deps: JobDeps = context.additional_context["volfefe"]
            with deps.db.connection() as conn:
                report = enqueue(conn, unclassified_ids(conn))
            logger.info(
                "periodic enqueue: %d queued, %d already queued",
                len(report.queued),
                len(report.already_queued),
            )

    if settings.jobs_prune_cron != "off":

        @app.periodic(cron=settings.jobs_prune_cron, periodic_id="prune-jobs")
        @app.task(name="volfefe.prune_jobs", queue=MAINTENANCE_QUEUE, pass_context=True)
        def prune_jobs(context: JobContext, timestamp: int) -> None:
            deps: JobDeps = context.additional_context["volfefe"]
            with deps.db.connection() as conn:
                deleted = prune(conn, timedelta(days=settings.jobs_prune_days))
            logger.info("pruned %d finished jobs", deleted)

    if settings.jobs_rescue_cron != "off":

        @app.periodic(cron=settings.jobs_rescue_cron, periodic_id="rescue-stalled")
        @app.task(name="volfefe.rescue_stalled_jobs", queue=MAINTENANCE_QUEUE, pass_context=True)
        async def rescue_stalled_jobs(context: JobContext, timestamp: int) -> None:
            await rescue_stalled(context.app, context.additional_context["volfefe"])

    return app


async def rescue_stalled(app: procrastinate.App, deps: JobDeps) -> int:
    """Re-queue the running jobs of workers that stopped beating (still capped in attempts)."""
    settings = deps.settings
    stalled = list(
        await app.job_manager.get_stalled_jobs(
            queue=QUEUE, seconds_since_heartbeat=settings.jobs_stalled_after
        )
    )
    for job in stalled:
        assert job.id is not None
        raw_id = job.task_kwargs.get("content_id")
        content_id = int(raw_id) if isinstance(raw_id, int | str) else None
        attempt = job.attempts + 1
        died = WorkerError(f"the job worker running attempt {attempt} stopped beating")
        if attempt >= settings.jobs_max_attempts:
            await app.job_manager.finish_job_by_id_async(
                job.id, status=procrastinate.jobs.Status.FAILED, delete_job=False
            )
            await asyncio.to_thread(_record, deps, job.id, content_id, attempt, "failed", died)
        else:
            await app.job_manager.retry_job(job)
            await asyncio.to_thread(_record, deps, job.id, content_id, attempt, "rescued", died)
        logger.warning("rescued stalled job %s (post %s, attempt %d)", job.id, content_id, attempt)
    return len(stalled)


def _record(
    deps: JobDeps,
    job_id: int,
    content_id: int | None,
    attempt: int,
    outcome: str,
    error: BaseException | None = None,
) -> None:
    try:
        with deps.db.connection() as conn:
            record_attempt(conn, job_id, content_id, attempt, outcome, error)
    except (psycopg.Error, VolfefeError) as exc:  # the job's own outcome matters more
        logger.warning("could not record attempt %d of job %d: %s", attempt, job_id, exc)


def open_db_pool(url: str, size: int) -> ConnectionPool[Any]:
    """A connection pool for the tasks; broken connections are replaced after a restart."""
    pool: ConnectionPool[Any] = ConnectionPool(
        url,
        min_size=1,
        max_size=size,
        open=False,
        check=ConnectionPool.check_connection,
        kwargs={"autocommit": True, "row_factory": dict_row, "application_name": "volfefe jobs"},
        timeout=30.0,
    )
    pool.open(wait=False)
    return pool


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
    db = open_db_pool(url, concurrency + 2)
    deps = JobDeps(classifier, db, settings)
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
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(settings.jobs_heartbeat, 2.0)):
                    await stopping.wait()
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
        db.close()
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
