"""Command line of the bench: options, the plan they make, and one run of every step."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from . import __doc__ as package_doc
from .common import log
from .corpus import bench_cache_root, ensure_model, load_corpus
from .registry import run_steps
from .report import print_report, to_json
from .results import Context, Plan, Results

DEFAULT_POSTS, QUICK_POSTS = 300, 24
SPAWN_POSTS, QUICK_SPAWN_POSTS = 3, 1
LATENCY_CALLS, QUICK_LATENCY_CALLS = 50, 10
COLD_STARTS, QUICK_COLD_STARTS = 3, 1


def sanitise_environment() -> None:
    """Offline hub, and no VOLFEFE_* variable that would change what a row measures.

    Other VOLFEFE_* settings (workers, threads, batch size, jobs concurrency) are kept: they
    are the configuration under test, and the report prints them.
    """
    for name in (
        "VOLFEFE_QUANTIZE",
        "VOLFEFE_BACKEND",
        "VOLFEFE_MODEL",
        "VOLFEFE_REVISION",
        "VOLFEFE_DATA_DIR",
        "VOLFEFE_ONNX_CACHE",
        "VOLFEFE_WORKER_FAULT",
        "VOLFEFE_WORKER_FAULT_ONCE",
    ):
        os.environ.pop(name, None)
    if not os.environ.get("DATABASE_URL"):
        os.environ.pop("DATABASE_URL", None)
    os.environ.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(package_doc or "").splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: FinBERT-sized, cached)")
    parser.add_argument("--posts", type=int, help=f"corpus size (default {DEFAULT_POSTS})")
    parser.add_argument("--seed", type=int, default=1234, help="corpus shuffle and model seed")
    parser.add_argument("--quick", action="store_true", help="tiny model, few posts (CI)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per step")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    args = parser.parse_args(argv)
    if args.posts is not None and args.posts < 2:
        parser.error("--posts must be >= 2")
    return args


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run every measurement once and report; 1 when a row failed."""
    args = parse_args(argv)
    began = time.monotonic()
    load_start = [round(x, 2) for x in os.getloadavg()]
    sanitise_environment()
    workdir = Path(tempfile.mkdtemp(prefix="volfefe-bench-"))
    # Exports of bench models stay out of the user's cache: per run with --quick (the tiny
    # model lives in the work folder), else next to the cached model, reused across runs.
    onnx_cache = workdir / "onnx" if args.quick else bench_cache_root() / "onnx"
    os.environ["VOLFEFE_ONNX_CACHE"] = str(onnx_cache)
    results = Results()
    try:
        model, kind = ensure_model(args.model, args.quick, args.seed, workdir)
        plan = make_plan(args, model, kind, workdir)
        texts = load_corpus(plan.posts, plan.seed)
        log(f"model {model} ({kind}), {len(texts)} posts, work folder {workdir}")
        run_steps(Context(plan, texts, results))
        report = to_json(plan, results, time.monotonic() - began, load_start)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        print_report(report)
        if args.json:
            print(f"JSON written to {args.json}")
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if results.errors else 0
