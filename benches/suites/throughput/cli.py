"""The throughput suite's options, the plan they make, and one run of every step."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from ...harness.corpus import shuffled
from ...harness.logs import log
from ...harness.model import cache_root, ensure_model
from ...harness.settings import offline_env
from ...harness.suite import Outcome, Suite
from .registry import run_steps
from .report import print_report, rows_of, to_json
from .results import Context, Plan, Results

DEFAULT_POSTS, QUICK_POSTS = 300, 24
SPAWN_POSTS, QUICK_SPAWN_POSTS = 3, 1
LATENCY_CALLS, QUICK_LATENCY_CALLS = 50, 10
COLD_STARTS, QUICK_COLD_STARTS = 3, 1


def sanitise_environment(settings: Mapping[str, str]) -> None:
    """Offline hub, no VOLFEFE_* variable that would change what a row measures, then the
    `--set` settings.

    Other VOLFEFE_* settings (workers, threads, batch size, jobs concurrency) are kept: they
    are the configuration under test, and the report prints them.
    """
    for name in (
        "VOLFEFE_QUANTIZE",
        "VOLFEFE_BACKEND",
        "VOLFEFE_MODEL",
        "VOLFEFE_REVISION",
        "VOLFEFE_DATA_DIR",
        "VOLFEFE_EXPORT_CACHE",
        "VOLFEFE_WORKER_FAULT",
        "VOLFEFE_WORKER_FAULT_ONCE",
    ):
        os.environ.pop(name, None)
    if not os.environ.get("DATABASE_URL"):
        os.environ.pop("DATABASE_URL", None)
    offline_env()
    os.environ.update(settings)


def posts_option(text: str) -> int:
    """`--posts`: a whole number of at least 2."""
    posts = int(text)
    if posts < 2:
        raise argparse.ArgumentTypeError("--posts must be >= 2")
    return posts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The suite's own options."""
    parser.add_argument("--model", type=Path, help="model folder (default: FinBERT-sized, cached)")
    parser.add_argument("--posts", type=posts_option, help=f"corpus size (default {DEFAULT_POSTS})")
    parser.add_argument("--seed", type=int, default=1234, help="corpus shuffle and model seed")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per step")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")


def make_plan(args: argparse.Namespace, model: Path, kind: str, workdir: Path) -> Plan:
    """The plan for these options: `--quick` means few posts, spawns, calls and cold starts."""
    quick = args.quick
    return Plan(
        model=model,
        model_kind=kind,
        posts=args.posts or (QUICK_POSTS if quick else DEFAULT_POSTS),
        seed=args.seed,
        quick=quick,
        spawn_posts=QUICK_SPAWN_POSTS if quick else SPAWN_POSTS,
        latency_calls=QUICK_LATENCY_CALLS if quick else LATENCY_CALLS,
        cold_starts=QUICK_COLD_STARTS if quick else COLD_STARTS,
        cores=os.cpu_count() or 1,
        timeout=args.timeout,
        workdir=workdir,
    )


def run(args: argparse.Namespace, settings: Mapping[str, str]) -> Outcome:
    """Run every measurement once and report; not ok when a row failed."""
    began = time.monotonic()
    load_start = [round(x, 2) for x in os.getloadavg()]
    sanitise_environment(settings)
    workdir = Path(tempfile.mkdtemp(prefix="volfefe-bench-"))
    # Exports of bench models stay out of the user's cache: per run with --quick (the tiny
    # model lives in the work folder), else next to the cached model, reused across runs.
    export_cache = workdir / "onnx" if args.quick else cache_root() / "onnx"
    os.environ["VOLFEFE_EXPORT_CACHE"] = str(export_cache)
    results = Results()
    try:
        model, kind = ensure_model(args.model, args.quick, workdir, args.seed)
        plan = make_plan(args, model, kind, workdir)
        texts = shuffled(plan.posts, plan.seed)
        log(f"model {model} ({kind}), {len(texts)} posts, work folder {workdir}")
        run_steps(Context(plan, texts, results))
        report = to_json(plan, results, time.monotonic() - began, load_start)
        print_report(report)
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return Outcome(report, rows_of(report), ok=not results.errors)


SUITE = Suite(
    name="throughput",
    description="Throughput, latency, cold start and memory of volfefe, next to the bare model.",
    add_arguments=add_arguments,
    run=run,
)
