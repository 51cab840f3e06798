"""`volfefe classify`: feed stored posts to the pool in batches and write results as they land.

```
targets ──runs of like length──> claim ──submit_many──> pool (workers+1 batches in flight)
                                                         │ results, in order
                          write batch (one transaction) ──> release claims ──> report
```

Ctrl-C or a kill loses at most the batches in flight; a re-run resumes with what is left.
A dropped database connection is reopened and the batch written again; when the database
stays away the run stops with DatabaseUnavailable, and when the pool breaks (or no child can
ever start) with PoolBroken (ConfigError): the summary of what was done is kept either way,
and `RunSummary.stopped_by` holds the error.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from volfefe.classify.intelligence import Outcome, store_results
from volfefe.errors import (
    AlreadyClassified,
    ClassifierError,
    DatabaseUnavailable,
    VolfefeError,
    raised_by_ctrl_c,
)
from volfefe.result import SENTIMENTS, Classification
from volfefe.store.claims import claim, release
from volfefe.store.posts import ContentRow
from volfefe.supervisor.batching import run_sizes
from volfefe.supervisor.classifier import Classifier

logger = logging.getLogger(__name__)

RECONNECT_ATTEMPTS = 3
RECONNECT_BACKOFF = 0.5  # seconds, doubled each attempt

Connection = psycopg.Connection[Any]
Pending = concurrent.futures.Future[list[Classification | ClassifierError]]


class Reporter(Protocol):
    """Shows progress; called once per post as its result is stored."""

    def start(self, total: int) -> None:
        """The run begins with `total` posts."""

    def post(self, content_id: int, outcome: Outcome | None, ms: float) -> None:
        """One post is done (`None`: skipped, another process has it)."""

    def stop(self) -> None:
        """The run ended (normally or not)."""


@dataclass
class RunSummary:
    """What a run did: counts, the distribution of new results, and why posts failed."""

    total: int = 0
    succeeded: int = 0
    skipped: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    distribution: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    interrupted: bool = False
    error: str | None = None  # `TypeName: message` of stopped_by
    stopped_by: VolfefeError | None = field(default=None, repr=False)

    def record(self, content_id: int, outcome: Outcome | None) -> None:
        """Count one post's outcome."""
        if outcome is None or isinstance(outcome, AlreadyClassified):
            self.skipped += 1  # someone else has it, or had it: nothing for this run to do
        elif isinstance(outcome, Classification):
            self.succeeded += 1
            self.distribution[outcome.sentiment] += 1
        else:
            self.failed[content_id] = f"{type(outcome).__name__}: {outcome}"

    def stop(self, exc: VolfefeError) -> None:
        """The run ended early because of `exc` (the database went away, the pool broke)."""
        self.stopped_by = exc
        self.error = f"{type(exc).__name__}: {exc}"

    @property
    def exit_code(self) -> int:
        """0 all succeeded, 1 some failed, the error's own when the run stopped early
        (4 DatabaseUnavailable, 3 PoolBroken), 130 interrupted."""
        if self.interrupted:
            return 130
        if self.stopped_by is not None:
            return self.stopped_by.exit_code
        return 1 if self.failed else 0

    def to_json(self) -> dict[str, Any]:
        """The machine-readable summary printed by `--json`."""
        return {
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": len(self.failed),
            "skipped": self.skipped,
            "distribution": {s: self.distribution.get(s, 0) for s in SENTIMENTS},
            "failures": [{"content_id": k, "reason": v} for k, v in sorted(self.failed.items())],
            "elapsed_s": round(self.elapsed_s, 3),
            "posts_per_s": round(self.succeeded / self.elapsed_s, 3) if self.elapsed_s else 0.0,
            "interrupted": self.interrupted,
            "error": self.error,
        }


class ClassifyRun:
    """Classify `targets` with `classifier`, storing through connections from `connect`."""

    def __init__(
        self,
        classifier: Classifier,
        connect: Callable[[], Connection],
        reporter: Reporter,
        *,
        batch_size: int,
        pass_tokens: int,
        in_flight: int,
    ) -> None:
        self._classifier = classifier
        self._connect = connect
        self._conn = connect()
        self._reporter = reporter
        self._batch_size = batch_size
        self._pass_tokens = pass_tokens
        self._in_flight = in_flight
        self.summary = RunSummary()

    def run(self, targets: Sequence[ContentRow], early: dict[int, VolfefeError]) -> RunSummary:
        """Classify `targets`; `early` are posts that failed before inference (e.g. not found)."""
        started = time.monotonic()
        # Which posts is the caller's choice; in what order does not matter, so posts of like
        # length in tokens go together and the children's forward passes carry little padding,
        # and each batch is cut as the pool cuts a caller's texts: one batch, one forward pass.
        counts = self._classifier.count_tokens([row.text for row in targets])
        order = sorted(range(len(targets)), key=counts.__getitem__)
        targets = [targets[i] for i in order]
        sizes = run_sizes([counts[i] for i in order], self._batch_size, self._pass_tokens)
        self.summary.total = len(targets) + len(early)
        self._reporter.start(self.summary.total)
        for content_id, exc in early.items():
            self._done(content_id, exc, 0.0)
        pending: deque[tuple[list[ContentRow], Pending, float]] = deque()
        batches = _chunks(list(targets), sizes)
        try:
            while True:
                while len(pending) < self._in_flight and (batch := next(batches, None)):
                    rows = self._claim(batch)
                    if rows:
                        texts = [row.text for row in rows]
                        pending.append(
                            (rows, self._classifier.submit_many(texts), time.monotonic())
                        )
                if not pending:
                    break
                rows, future, sent = pending.popleft()
                results = future.result()
                per_post_ms = (time.monotonic() - sent) * 1000 / len(rows)
                outcomes = self._store(rows, results)
                for row in rows:
                    self._done(row.id, outcomes[row.id], per_post_ms)
        except KeyboardInterrupt:
            self.summary.interrupted = True
        except VolfefeError as exc:  # DatabaseUnavailable, PoolBroken, ConfigError, PoolClosed
            self.summary.stop(exc)
        finally:
            for _, future, _ in pending:
                future.cancel()
            self.summary.elapsed_s = time.monotonic() - started
            self._reporter.stop()
            self._conn.close()
        return self.summary

    def _done(self, content_id: int, outcome: Outcome | None, ms: float) -> None:
        self.summary.record(content_id, outcome)
        self._reporter.post(content_id, outcome, ms)

    def _claim(self, batch: list[ContentRow]) -> list[ContentRow]:
        held = self._retrying(lambda conn: claim(conn, [row.id for row in batch]))
        for row in batch:
            if row.id not in held:
                self._done(row.id, None, 0.0)
        return [row for row in batch if row.id in held]

    def _store(
        self, rows: list[ContentRow], results: list[Classification | ClassifierError]
    ) -> dict[int, Outcome | None]:
        ids = [row.id for row in rows]
        outcomes: dict[int, Outcome | None] = dict(
            self._retrying(lambda conn: store_results(conn, ids, results))
        )
        for content_id, outcome in outcomes.items():
            if isinstance(outcome, AlreadyClassified):  # another run stored it first
                outcomes[content_id] = None
        self._retrying(lambda conn: release(conn, ids))
        return outcomes

    def _retrying(self, action: Callable[[Connection], Any]) -> Any:
        """Run `action`; when the connection drops, reopen it and run it again."""
        for attempt in range(RECONNECT_ATTEMPTS + 1):
            try:
                return self._once(action)
            except psycopg.OperationalError as exc:
                if attempt == RECONNECT_ATTEMPTS:
                    raise DatabaseUnavailable(f"the database connection dropped: {exc}") from exc
                logger.warning("database connection lost (%s); reconnecting", exc)
                self._conn.close()
                time.sleep(RECONNECT_BACKOFF * 2**attempt)
            except DatabaseUnavailable:
                if attempt == RECONNECT_ATTEMPTS:
                    raise
                time.sleep(RECONNECT_BACKOFF * 2**attempt)
        raise AssertionError("unreachable")

    def _once(self, action: Callable[[Connection], Any]) -> Any:
        """Run `action` on the connection (reopened if closed). Ctrl-C inside a database call
        can surface as psycopg's (or our reconnect's) own error, raised by its clean-up: that
        is the Ctrl-C, not a dropped connection, so it is raised as KeyboardInterrupt."""
        try:
            if self._conn.closed:
                self._conn = self._connect()
            return action(self._conn)
        except Exception as exc:
            if raised_by_ctrl_c(exc):
                raise KeyboardInterrupt from exc
            raise


def _chunks(rows: list[ContentRow], sizes: list[int]) -> Iterator[list[ContentRow]]:
    start = 0
    for size in sizes:
        yield rows[start : start + size]
        start += size
