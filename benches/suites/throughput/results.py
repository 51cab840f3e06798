"""What one run measures (`Plan`), what it found (`Results`), what every step is handed
(`Context`), and how a row is timed and a failure kept rather than raised."""

from __future__ import annotations

import dataclasses
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...harness.logs import log

if TYPE_CHECKING:
    from .rows.in_process import InProcess

# The table's rows, in its order, with the note printed next to each.
NOTES: dict[str, str] = {
    "spawn": "one process per post",
    "pipeline": "transformers pipeline, 1 text/call",
    "pipeline_b16": "pipeline, batch_size=16",
    "ceiling": "sorted, <=1024 padded tokens/batch",
    "ceiling_onnx": "the same loop, ONNX Runtime fp32 (fused graph)",
    "ceiling_onnx_int8": "the same loop, ONNX Runtime int8",
    "pool": "Classifier.classify_many, no db (torch)",
    "pool_onnx": "Classifier.classify_many, no db (onnx)",
    "classify_fp32": "volfefe classify --all, torch fp32",
    "classify_int8": "volfefe classify --all, torch int8",
    "classify_onnx": "volfefe classify --all, onnx fp32",
    "classify_onnx_int8": "volfefe classify --all, onnx int8",
    "jobs": "jobs worker (torch), process start to drained",
}
ROWS: tuple[str, ...] = tuple(NOTES)


class RowNotAvailable(Exception):
    """A row this checkout cannot run yet (reported as n/a with the reason, not a failure)."""


@dataclasses.dataclass
class Plan:
    """What one bench run measures, and with what."""

    model: Path
    model_kind: str
    posts: int
    seed: int
    quick: bool
    spawn_posts: int
    latency_calls: int
    cold_starts: int
    cores: int
    timeout: float
    workdir: Path


@dataclasses.dataclass
class Results:
    """Every figure of one run; `None` where a row could not run (see `not_run`, `errors`)."""

    posts_per_s: dict[str, float | None] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(ROWS)
    )
    details: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    cold_start_s: float | None = None
    cold_starts_s: list[float] = dataclasses.field(default_factory=list)
    latency_ms: dict[str, float | None] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(("p50", "p95", "bare_p50", "bare_p95"))
    )
    child_rss_mb: float | None = None
    child_rss_mb_each: list[float] = dataclasses.field(default_factory=list)
    # the ONNX backend: cold start, peak RSS per child and idle latency, by quantisation
    onnx: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    not_run: dict[str, str] = dataclasses.field(default_factory=dict)
    errors: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Context:
    """What every step is handed: the plan, the corpus, the results so far, and the model
    loaded in this process (by the in-process step, until the pool step's latency comparison
    has used it; None when it could not load)."""

    plan: Plan
    texts: list[str]
    results: Results
    bare: InProcess | None = None


def record_error(results: Results, what: str, exc: BaseException) -> None:
    """Keep a failed measurement's reason; the run goes on."""
    results.errors[what] = f"{type(exc).__name__}: {exc}"
    log(f"{what} FAILED: {type(exc).__name__}: {exc}")
    if not isinstance(exc, RuntimeError | TimeoutError):
        traceback.print_exc(file=sys.stderr)


def timed_row(results: Results, row: str, posts: int, body: Callable[[], dict[str, Any]]) -> None:
    """Time `body` (which classifies `posts` posts) as the row's posts/s; a failure is kept."""
    started = time.perf_counter()
    try:
        extra = body()
    except Exception as exc:
        record_error(results, row, exc)
        return
    seconds = time.perf_counter() - started
    results.posts_per_s[row] = posts / seconds
    results.details[row] = {"posts": posts, "seconds": round(seconds, 3), **extra}
    log(f"{row}: {posts / seconds:.2f} posts/s ({posts} posts in {seconds:.1f} s)")
