"""The procrastinate app: volfefe's tasks and periodic tasks.

```
classify_post (queue ml_classification, one job per post, sync: runs in a thread)
periodic (each fires once per tick, however many workers): enqueue unclassified (hourly),
prune finished jobs (daily), rescue jobs of workers that stopped beating (every minute)
```

Attempts and backoff: `volfefe.jobs.retry`. Not found / no text end the job as failed at
once; already classified ends it as succeeded. Each attempt's outcome and error text go to
`volfefe_job_attempts`. The worker process that runs these: `volfefe.jobs.runner`.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import procrastinate
import psycopg
from procrastinate import JobContext
from psycopg_pool import ConnectionPool

from volfefe.config import Settings
from volfefe.errors import AlreadyClassified, VolfefeError, WorkerError
from volfefe.jobs.queue import QUEUE, TASK, enqueue, prune, record_attempt, unclassified_ids
from volfefe.jobs.retry import TransientRetry, is_transient
from volfefe.store.intelligence import classify_content
from volfefe.supervisor.classifier import Classifier

logger = logging.getLogger(__name__)

MAINTENANCE_QUEUE = "volfefe_maintenance"


@dataclass
class JobDeps:
    """What the tasks of one job-worker process share."""

    classifier: Classifier
    db: ConnectionPool[Any]
    settings: Settings


class SharedDeps:
    """The tasks' `JobDeps`: those `jobs worker` passes in the job context, or else (under
    procrastinate's own `procrastinate worker`, which passes none) one set made on first use
    in this process and closed at its exit."""

    def __init__(self, settings: Settings, url: str) -> None:
        self._settings = settings
        self._url = url
        self._lock = threading.Lock()
        self._made: JobDeps | None = None

    def get(self, context: JobContext) -> JobDeps:
        """The deps for a task running in `context`."""
        given = context.additional_context.get("volfefe")
        if isinstance(given, JobDeps):
            return given
        with self._lock:
            if self._made is None:
                from volfefe.jobs.runner import open_db_pool  # the runner imports this module
                from volfefe.supervisor.pull import pulled_settings

                settings = pulled_settings(self._settings, progress=False)  # before any child
                db = open_db_pool(self._url, settings.jobs_concurrency + 2)
                self._made = JobDeps(Classifier(settings), db, settings)
                atexit.register(self._close)
            return self._made

    def _close(self) -> None:
        if self._made is not None:
            self._made.db.close()
            self._made.classifier.close()


def make_app(settings: Settings, url: str) -> procrastinate.App:
    """A procrastinate app on `url` with volfefe's tasks and periodic tasks registered."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    retry = TransientRetry(settings.jobs_max_attempts, settings.jobs_backoff)
    shared = SharedDeps(settings, url)

    @app.task(name=TASK, queue=QUEUE, pass_context=True, retry=retry)
    def classify_post(context: JobContext, content_id: int) -> None:
        deps = shared.get(context)
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
            last = not is_transient(exc) or attempt >= settings.jobs_max_attempts
            _record(deps, job.id, content_id, attempt, "failed" if last else "retrying", exc)
            raise
        _record(deps, job.id, content_id, attempt, "classified")

    if settings.jobs_enqueue_cron != "off":

        @app.periodic(cron=settings.jobs_enqueue_cron, periodic_id="enqueue-unclassified")
        @app.task(name="volfefe.enqueue_unclassified", queue=MAINTENANCE_QUEUE, pass_context=True)
        def enqueue_unclassified(context: JobContext, timestamp: int) -> None:
            deps = shared.get(context)
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
            deps = shared.get(context)
            with deps.db.connection() as conn:
                deleted = prune(conn, timedelta(days=settings.jobs_prune_days))
            logger.info("pruned %d finished jobs", deleted)

    if settings.jobs_rescue_cron != "off":

        @app.periodic(cron=settings.jobs_rescue_cron, periodic_id="rescue-stalled")
        @app.task(name="volfefe.rescue_stalled_jobs", queue=MAINTENANCE_QUEUE, pass_context=True)
        async def rescue_stalled_jobs(context: JobContext, timestamp: int) -> None:
            await rescue_stalled(context.app, await asyncio.to_thread(shared.get, context))

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
    first_line = str(error).partition("\n")[0]  # a worker error's stderr tail stays in the table
    because = f": {type(error).__name__}: {first_line}" if error is not None else ""
    logger.info("job %s post %s attempt %d: %s%s", job_id, content_id, attempt, outcome, because)
    try:
        with deps.db.connection() as conn:
            record_attempt(conn, job_id, content_id, attempt, outcome, error)
    except (psycopg.Error, VolfefeError) as exc:  # the job's own outcome matters more
        logger.warning("could not record attempt %d of job %d: %s", attempt, job_id, exc)
