"""What a new forward-pass size costs a backend: each size's first pass against its second.

    .venv/bin/python -m benches run shapes [--row openvino_int8_static_bf16]
                                           [--sizes 1x16,1x32,...] [--passes N]
                                           [--model DIR] [--quick]

One engine of `--row` (a row of the runtimes suite, its export cached there), loaded
and warmed up as a child does, then passes of several sizes (rows x tokens), each run twice
in a row: the first pays for whatever the runtime prepares for a size it has not met, the
second shows the pass itself (`--sizes` picks the sizes: lone posts of 16 and 32 tokens,
say, to see what a short post's pass costs). OpenVINO prepares kernels per size, so a fresh
child pays once for each size it meets; ONNX Runtime does not. Without `--model` it uses
the FinBERT-sized random model of the harness; `--quick` the tiny test model (figures
mean nothing).

With `--passes N` each size runs N times, and the median of all but the first is the
pass's cost: a least-squares line of it over the padded tokens (rows x tokens) gives what a
token costs and what a pass costs beyond its tokens, in tokens (`pass_cost_tokens`: the
engine's PASS_COST_TOKENS, volfefe/child/engine.py, comes from such a run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from ..harness.model import cache_root, ensure_model
from ..harness.settings import offline_env
from ..harness.suite import Outcome, Suite
from ..harness.tables import markdown_table
from . import runtimes

# Sizes a run of posts meets: lone posts of several lengths, and full passes of ~1024 tokens.
SIZES = [(1, 200), (1, 300), (1, 512), (4, 41), (4, 61), (20, 50), (64, 16), (63, 16), (2, 512)]


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """`rows x tokens` pairs from "1x16,4x41".

    >>> parse_sizes("1x16, 4x41")
    [(1, 16), (4, 41)]
    """
    sizes = []
    for part in text.split(","):
        rows, _, tokens = part.strip().partition("x")
        if not (rows.isdigit() and tokens.isdigit() and int(rows) > 0 and int(tokens) > 0):
            raise argparse.ArgumentTypeError(f"not ROWSxTOKENS: {part.strip()!r}")
        sizes.append((int(rows), int(tokens)))
    return sizes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The suite's own options."""
    parser.add_argument(
        "--row",
        default="openvino_int8_static_bf16",
        choices=list(runtimes.ALL_OURS),
        help="a row of the runtimes suite (the bf16 ones on CPUs with bf16 arithmetic)",
    )
    parser.add_argument("--sizes", type=parse_sizes, default=SIZES, help="e.g. 1x16,1x32")
    parser.add_argument(
        "--passes", type=int, default=2, help="passes per size (>= 2): first, then the median"
    )
    parser.add_argument("--model", type=Path, help="model folder (default: FinBERT-sized)")


def run(args: argparse.Namespace, settings: Mapping[str, str]) -> Outcome:
    """Print one line per size: first pass, second pass, the difference (ms)."""
    offline_env()
    os.environ.update(settings)
    if args.row not in runtimes.ours():
        raise SystemExit(f"bench: {args.row} needs a CPU with bf16 arithmetic")
    if args.passes < 2:
        raise SystemExit("bench: --passes needs at least 2 (the first, then the others)")
    measured: list[tuple[int, int, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="volfefe-shapes-") as tmp:
        work = Path(tmp)
        model, kind = ensure_model(args.model, args.quick, work)
        exports = work / "exports" if args.quick else cache_root() / "exports-runtimes"
        folder = runtimes.export_all(model, exports, [args.row])[args.row]
        engine = runtimes.load_ours(args.row, folder, os.cpu_count() or 1)
        engine.warm_up()
        for rows, tokens in args.sizes:
            if tokens > engine.max_length:
                continue
            batch = [[engine.pad_id + 5] * tokens] * rows
            took = []
            for _ in range(args.passes):
                started = time.perf_counter()
                engine._forward(batch)
                took.append((time.perf_counter() - started) * 1000)
            measured.append((rows, tokens, took[0], took[1], statistics.median(took[1:])))
    print(f"{args.row}: ms of a size's first pass, its second, and the difference")
    table = [
        [f"{rows} x {tokens}", f"{first:.1f}", f"{second:.1f}", f"{first - second:.1f}"]
        for rows, tokens, first, second, _ in measured
    ]
    header = ["rows x tokens", "first", "second", "first - second"]
    print("\n".join(markdown_table(header, "lrrr", table)))
    records = [
        {
            "rows_x_tokens": f"{rows} x {tokens}",
            "first_ms": round(first, 2),
            "second_ms": round(second, 2),
            "first_minus_second_ms": round(first - second, 2),
            "median_ms": round(median, 2),
        }
        for rows, tokens, first, second, median in measured
    ]
    report: dict[str, object] = {
        "row": args.row,
        "model_kind": kind,
        "threads": os.cpu_count(),
        "passes": args.passes,
        "sizes": records,
    }
    points = [(rows * tokens, median) for rows, tokens, _, _, median in measured]
    if len({tokens for tokens, _ in points}) > 1:
        report["fit"] = pass_cost(points)
        print(f"{args.row}: a pass costs {report['fit']}")
    return Outcome(report, records)


def pass_cost(points: list[tuple[int, float]]) -> dict[str, float | None]:
    """The least-squares line of ms over padded tokens: ms per token, ms per pass beyond its
    tokens, and that in tokens (None when noise gives the line no upward slope).

    >>> pass_cost([(10, 5.0), (20, 7.0), (40, 11.0)])
    {'ms_per_token': 0.2, 'fixed_ms': 3.0, 'pass_cost_tokens': 15.0}
    """
    slope, intercept = statistics.linear_regression(
        [float(tokens) for tokens, _ in points], [ms for _, ms in points]
    )
    return {
        "ms_per_token": round(slope, 4),
        "fixed_ms": round(intercept, 2),
        "pass_cost_tokens": round(intercept / slope, 1) if slope > 0 else None,
    }


SUITE = Suite(
    name="shapes",
    description="What a new forward-pass size costs a backend: each size's first pass against "
    "its second.",
    add_arguments=add_arguments,
    run=run,
)
