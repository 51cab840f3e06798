"""The steps of a run, in the order they run, and how one is run: a step fills one or more
rows of the table (or, with none, other figures); its failure or n/a is recorded against
those rows and the run goes on."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

from ...harness.logs import log
from .results import Context, RowNotAvailable, record_error
from .rows.child import bench_cold_start, bench_spawn
from .rows.classify import VARIANTS, bench_classify
from .rows.in_process import IN_PROCESS, bench_onnx_ceiling, in_process_rows
from .rows.jobs import bench_jobs
from .rows.pool import pool_onnx_row, pool_row


@dataclasses.dataclass(frozen=True)
class Step:
    """One measurement: its name in the log, the rows (or figures) a failure is recorded
    against, and the function that measures them."""

    name: str
    rows: tuple[str, ...]
    run: Callable[[Context], None]


# In run order, which differs from the table's (results.NOTES): the in-process model is loaded
# first and kept until the torch pool's latency comparison, the database rows come last.
STEPS: tuple[Step, ...] = (
    Step("in-process", (*IN_PROCESS, "latency_bare"), in_process_rows),
    Step("pool", ("pool",), pool_row),
    Step("ceiling_onnx", ("ceiling_onnx",), functools.partial(bench_onnx_ceiling, quantize="none")),
    Step(
        "ceiling_onnx_int8",
        ("ceiling_onnx_int8",),
        functools.partial(bench_onnx_ceiling, quantize="int8"),
    ),
    Step("pool onnx", ("pool_onnx",), pool_onnx_row),
    Step("cold start", (), bench_cold_start),
    Step("spawn", ("spawn",), bench_spawn),
    *(Step(row, (row,), functools.partial(bench_classify, row=row)) for row in VARIANTS),
    Step("jobs", ("jobs",), bench_jobs),
)


def run_step(ctx: Context, step: Step) -> None:
    """Run one measurement step; a failure or n/a is recorded against its rows, not raised."""
    results = ctx.results
    log(f"--- {step.name}")
    try:
        step.run(ctx)
    except RowNotAvailable as exc:
        for row in step.rows:
            results.not_run[row] = str(exc)
        log(f"{step.name}: n/a ({exc})")
    except Exception as exc:
        record_error(results, step.name, exc)
        for row in step.rows:
            if results.posts_per_s.get(row) is None:
                results.errors.setdefault(row, results.errors[step.name])


def run_steps(ctx: Context, steps: Sequence[Step] = STEPS) -> None:
    """Run every step in order."""
    for step in steps:
        run_step(ctx, step)
