"""The procrastinate app: volfefe's tasks and periodic tasks.

```
classify_post (queue ml_classification, one job per post, async: volfefe.classify.job)
periodic (each fires once per tick, however many workers): enqueue unclassified (hourly),
prune finished jobs (daily), rescue jobs of workers that stopped beating (every minute);
queue volfefe_maintenance, priority 100: fetched before any waiting classification job
```

Attempts and backoff: `volfefe.jobs.retry`. Not found / no text end the job as failed at
once; so does a poison text (PoisonText: the post is quarantined, attempt outcome
`quarantined`); already classified ends it as succeeded. Each attempt's outcome and error text go to
`volfefe_job_attempts`. The worker process that runs these: `volfefe.jobs.runner`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import croniter
import procrastinate
import psycopg
from procrastinate import JobContext

from volfefe.classify.job import classify_post_job
from volfefe.config import Settings
from volfefe.errors import AlreadyClassified, ConfigError, PoisonText, VolfefeError
from volfefe.jobs.connections import (
    WorkerConnector,
    unchecked_pool,
    use_autocommit,
    worker_url,
)
from volfefe.jobs.deps import JobDeps, SharedDeps
from volfefe.jobs.queue import (
    QUEUE,
    TASK,
    enqueue,
    prune,
    record_attempt,
    rescue,
    unclassified_ids,
)
from volfefe.jobs.retry import TransientRetry, interrupted, is_transient, worker_cannot_classify

logger = logging.getLogger(__name__)

MAINTENANCE_QUEUE = "volfefe_maintenance"
RECORD_WAIT = 2.0  # seconds an attempt's record waits for a database connection
# procrastinate fetches by priority first (then id), whatever the queue: a maintenance job
# (classification jobs have priority 0) takes the next free slot ahead of any backlog.
MAINTENANCE_PRIORITY = 100


CRONS = {
    "jobs_enqueue_cron": "VOLFEFE_JOBS_ENQUEUE_CRON",
    "jobs_prune_cron": "VOLFEFE_JOBS_PRUNE_CRON",
    "jobs_rescue_cron": "VOLFEFE_JOBS_RESCUE_CRON",
}


def check_crons(settings: Settings) -> None:
    """Raise ConfigError naming the variable of the first invalid cron expression.

    >>> check_crons(Settings(jobs_prune_cron="61 * * * *"))
    Traceback (most recent call last):
    ...
    volfefe.errors.ConfigError: VOLFEFE_JOBS_PRUNE_CRON is not a valid cron expression ...
    """
    for name, var in CRONS.items():
        cron = getattr(settings, name)
        if cron == "off":
            continue
        try:
            croniter.croniter(cron)
        except (ValueError, KeyError) as exc:
            raise ConfigError(
                f"{var} is not a valid cron expression ('off' disables it): {cron!r} ({exc})"
            ) from None


def make_app(settings: Settings, url: str) -> procrastinate.App:
    """A procrastinate app on `url` with volfefe's tasks and periodic tasks registered.

    Raises ConfigError for an invalid cron expression, before anything starts.
    """
    check_crons(settings)
    connector = WorkerConnector(
        conninfo=worker_url(url), configure=use_autocommit, pool_factory=unchecked_pool
    )
    app = procrastinate.App(connector=connector)
    retry = TransientRetry(settings.jobs_max_attempts, settings.jobs_backoff)
    shared = SharedDeps(settings, url)

    @app.task(name=TASK, queue=QUEUE, pass_context=True, retry=retry)
    async def classify_post(context: JobContext, content_id: int) -> None:
        deps = await shared.aget(context)
        assert deps.adb is not None and deps.coalescer is not None
        job = context.job
        assert job.id is not None
        attempt = job.attempts + 1
        try:  # a success records its attempt in the storing statement itself
            stored = await classify_post_job(
                deps.adb,
                deps.coalescer,
                deps.classifier,
                job_id=job.id,
                attempt=attempt,
                content_id=content_id,
            )
        except AlreadyClassified:
            await asyncio.to_thread(
                _record, deps, job.id, content_id, attempt, "already_classified"
            )
            return
        except PoisonText as exc:  # permanent; classify_post_job quarantined the post
            await asyncio.to_thread(_record, deps, job.id, content_id, attempt, "quarantined", exc)
            raise
        except asyncio.CancelledError as exc:  # cut off by a shutdown: record it, no await
            _record(deps, job.id, content_id, attempt, "interrupted", exc)
            raise
        except Exception as exc:
            if interrupted(exc):
                outcome = "interrupted"
            elif worker_cannot_classify(exc):
                outcome = "retrying"  # whatever the cap: the worker's state, not the post's
                if deps.stop is not None:
                    deps.stop()  # fetch nothing more: every job would meet the same
            elif not is_transient(exc) or attempt >= settings.jobs_max_attempts:
                outcome = "failed"
            else:
                outcome = "retrying"
            await asyncio.to_thread(_record, deps, job.id, content_id, attempt, outcome, exc)
            raise
        outcome = "classified" if stored else "already_classified"
        logger.info("job %s post %s attempt %d: %s", job.id, content_id, attempt, outcome)

    if settings.jobs_enqueue_cron != "off":

        @app.periodic(cron=settings.jobs_enqueue_cron, periodic_id="enqueue-unclassified")
        @app.task(
            name="volfefe.enqueue_unclassified",
            queue=MAINTENANCE_QUEUE,
            priority=MAINTENANCE_PRIORITY,
            pass_context=True,
        )
        def enqueue_unclassified(context: JobContext, timestamp: int) -> None:
            deps = shared.get(context)
            with deps.db.connection() as conn:
                # The ids are chosen before the enqueue statement: a post classified in
                # between is skipped there (migration 0006), not queued a second time.
                report = enqueue(conn, unclassified_ids(conn), unclassified_only=True)
            logger.info(
                "periodic enqueue: %d queued, %d skipped (queued or classified meanwhile)",
                len(report.queued),
                len(report.already_queued),
            )

    if settings.jobs_prune_cron != "off":

        @app.periodic(cron=settings.jobs_prune_cron, periodic_id="prune-jobs")
        @app.task(
            name="volfefe.prune_jobs",
            queue=MAINTENANCE_QUEUE,
            priority=MAINTENANCE_PRIORITY,
            pass_context=True,
        )
        def prune_jobs(context: JobContext, timestamp: int) -> None:
            deps = shared.get(context)
            with deps.db.connection() as conn:
                deleted = prune(conn, timedelta(days=settings.jobs_prune_days))
            logger.info("pruned %d finished job%s", deleted, "" if deleted == 1 else "s")

    if settings.jobs_rescue_cron != "off":

        @app.periodic(cron=settings.jobs_rescue_cron, periodic_id="rescue-stalled")
        @app.task(
            name="volfefe.rescue_stalled_jobs",
            queue=MAINTENANCE_QUEUE,
            priority=MAINTENANCE_PRIORITY,
            pass_context=True,
        )
        def rescue_stalled_jobs(context: JobContext, timestamp: int) -> None:
            rescue_stalled(shared.get(context))

    return app


def rescue_stalled(deps: JobDeps) -> int:
    """Re-queue the running jobs of workers that stopped beating (still capped in attempts);
    how many it re-queued or failed. One rescue at a time: `volfefe.jobs.queue.rescue`."""
    settings = deps.settings
    with deps.db.connection() as conn:
        ended = rescue(
            conn,
            stalled_after=settings.jobs_stalled_after,
            max_attempts=settings.jobs_max_attempts,
        )
    if ended is None:
        logger.info("stalled-job rescue skipped: another one is running")
        return 0
    for job in ended:
        logger.warning(
            "rescued stalled job %s (post %s, attempt %d): %s",
            job.job_id,
            job.content_id,
            job.attempt,
            job.outcome,
        )
    return len(ended)


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
        # A short wait for a connection: an interrupted attempt is recorded on the event loop,
        # and a worker cut off from its database must not block its shutdown on the record.
        with deps.db.connection(timeout=RECORD_WAIT) as conn:
            record_attempt(conn, job_id, content_id, attempt, outcome, error)
    except (psycopg.Error, VolfefeError) as exc:  # the job's own outcome matters more
        logger.warning("could not record attempt %d of job %d: %s", attempt, job_id, exc)
