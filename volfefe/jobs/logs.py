"""What a job worker logs: one line per job outcome (ours), no traceback for expected failures.

procrastinate logs every job's end, with the exception's traceback when it failed. For a
permanent failure we expect (a missing post, a post without text: a `VolfefeError` that is not
transient) that record and its traceback say nothing the outcome line (`volfefe.jobs.app`)
does not, so `ExpectedFailureFilter` drops it. Unexpected errors keep their traceback.
"""

from __future__ import annotations

import logging

from volfefe.errors import VolfefeError

PROCRASTINATE_WORKER_LOGGER = "procrastinate.worker"


class ExpectedFailureFilter(logging.Filter):
    """Drop procrastinate's record of a job that failed with a permanent `VolfefeError`.

    >>> from volfefe.errors import ContentNotFound
    >>> expected = (ContentNotFound, ContentNotFound(9), None)
    >>> record = logging.LogRecord("x", logging.ERROR, "", 0, "Job failed", None, expected)
    >>> ExpectedFailureFilter().filter(record)
    False
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False (drop) when the record's exception is an expected, permanent failure."""
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, VolfefeError) and not error.transient)


def install_job_logging(*, quiet: bool = False) -> None:
    """One INFO line per job outcome (`-q`: warnings only), procrastinate's own lines at
    WARNING unless the root logger asks for more (-v), and no traceback for expected failures."""
    logging.getLogger("volfefe.jobs").setLevel(logging.WARNING if quiet else logging.INFO)
    worker = logging.getLogger(PROCRASTINATE_WORKER_LOGGER)
    if not any(isinstance(f, ExpectedFailureFilter) for f in worker.filters):
        worker.addFilter(ExpectedFailureFilter())
