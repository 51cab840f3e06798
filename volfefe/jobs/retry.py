"""The one retry policy of background jobs: which failures come back, and when.

A failure is retried when it is transient (`VolfefeError.transient`, or a psycopg error that
says the connection or server failed); anything else fails the job at once. `PoolBroken` is
transient (the classifier rebuilds its pool, or the job worker exits and its service manager
restarts it; either way a later attempt can succeed). `PoisonText` is permanent: the post is
quarantined instead. A `ConfigError` met by the job (the classifier's children can no longer
start, say the model folder was broken after the start) is the worker's state, not the
post's: the job comes back after the backoff, cap or not, and `jobs worker` stops (exit 2).
A job gets `jobs_max_attempts` attempts in all, with `backoff ** attempt` seconds between them; an
attempt cut off by the worker's shutdown (`PoolClosed`, or the async task cancelled after
the grace) is queued again at once, cap or not.
"""

from __future__ import annotations

import asyncio

import psycopg
from procrastinate import BaseRetryStrategy, RetryDecision
from procrastinate.exceptions import JobAborted
from procrastinate.jobs import Job

from volfefe.errors import ConfigError, PoolClosed, VolfefeError


def is_transient(exc: BaseException) -> bool:
    """May the same job succeed later? The only place that answers this for jobs.

    >>> from volfefe.errors import CallTimeout, NoTextError, PoisonText, PoolBroken
    >>> is_transient(CallTimeout(1.0, pid=1)), is_transient(NoTextError())
    (True, False)
    >>> is_transient(PoolBroken("budget spent")), is_transient(PoisonText("kills a child"))
    (True, False)
    """
    if isinstance(exc, VolfefeError):
        return exc.transient
    return isinstance(exc, psycopg.OperationalError)


def interrupted(exc: BaseException) -> bool:
    """Was the attempt cut off by the job worker's own shutdown (not the job's fault)?

    Such an attempt is queued again at once, whatever the attempt cap, so a shutdown never
    loses a job; it still counts as an attempt (procrastinate counts every run).
    """
    return isinstance(exc, PoolClosed | asyncio.CancelledError | JobAborted)


def worker_cannot_classify(exc: BaseException) -> bool:
    """Did the attempt fail because this worker cannot classify at all (a ConfigError: its
    children can no longer start, or its settings cannot work)? Such an attempt comes back
    after the backoff whatever the cap, so no job is failed for the worker's state.

    >>> from volfefe.errors import NoTextError
    >>> worker_cannot_classify(ConfigError("no child can start")), worker_cannot_classify(
    ...     NoTextError())
    (True, False)
    """
    return isinstance(exc, ConfigError)


class TransientRetry(BaseRetryStrategy):
    """`total_attempts` attempts in all (1 = no retry), only for transient failures."""

    def __init__(self, total_attempts: int, backoff: float) -> None:
        self.total_attempts = total_attempts
        self.backoff = backoff

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        """Retry after `backoff ** (attempts so far)` seconds, or None to fail the job."""
        done = job.attempts + 1  # procrastinate counts the attempts before this one
        if interrupted(exception):
            return RetryDecision(retry_in={"seconds": 0})
        if worker_cannot_classify(exception):  # not at once: the worker is stopping
            return RetryDecision(retry_in={"seconds": max(1, round(self.backoff))})
        if done >= self.total_attempts or not is_transient(exception):
            return None
        return RetryDecision(retry_in={"seconds": round(self.backoff**done)})
