"""The classify_* rows: `volfefe classify --all --json` on a fresh database, one row per
backend and quantisation (`VARIANTS`)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

from ....harness.database import fresh_database
from ....harness.logs import log
from ....harness.process import WORKER, run, volfefe
from ..prepare import prepare_database, prepare_model
from ..results import Context, RowNotAvailable

# row -> (backend, quantize) for the rows that run volfefe itself
VARIANTS = {
    "classify_fp32": ("torch", "none"),
    "classify_int8": ("torch", "int8"),
    "classify_onnx": ("onnx", "none"),
    "classify_onnx_int8": ("onnx", "int8"),
}


def quantize_support() -> str | None:
    """Why VOLFEFE_QUANTIZE=int8 cannot run on this checkout, or None when it can."""
    from volfefe import Settings
    from volfefe.errors import ConfigError
    from volfefe.supervisor.port import worker_argv

    if "quantize" not in {f.name for f in dataclasses.fields(Settings)}:
        return "Settings has no `quantize` field yet"
    try:
        settings = Settings.from_env({"VOLFEFE_QUANTIZE": "int8"}, model="unused")
    except ConfigError as exc:
        return f"VOLFEFE_QUANTIZE=int8 is refused: {exc}"
    if getattr(settings, "quantize", None) != "int8":
        return "Settings.from_env does not read VOLFEFE_QUANTIZE yet"
    if "--quantize" not in worker_argv(settings):
        return "the pool does not pass --quantize to the child yet"
    helptext = run([sys.executable, str(WORKER), "--help"], env=os.environ, timeout=60)
    if "--quantize" not in helptext:
        return "worker/classify.py has no --quantize option yet"
    return None


def bench_classify(ctx: Context, row: str) -> None:
    """`volfefe classify --all --json` on a fresh database; the row is its posts_per_s."""
    plan, texts, results = ctx.plan, ctx.texts, ctx.results
    backend, quantize = VARIANTS[row]
    if quantize != "none":
        reason = quantize_support()
        if reason:
            raise RowNotAvailable(reason)
    with fresh_database(plan.workdir, row.replace("_", "")) as db_env:
        env = {
            **os.environ,
            **db_env,
            "VOLFEFE_MODEL": str(plan.model),
            "VOLFEFE_BACKEND": backend,
            "VOLFEFE_QUANTIZE": quantize,
        }
        prepare_s = prepare_model(plan, env)
        prepare_database(plan, texts, env, row.replace("_", ""))
        started = time.monotonic()
        out = volfefe(["classify", "--all", "--json"], env, plan.timeout)
        wall_s = time.monotonic() - started
    summary = json.loads(out.strip().splitlines()[-1])
    if summary.get("succeeded") != len(texts):
        raise RuntimeError(f"classify did not classify every post: {summary}")
    results.posts_per_s[row] = float(summary["posts_per_s"])
    log(f"{row}: {summary['posts_per_s']:.2f} posts/s ({len(texts)} posts in {wall_s:.1f} s wall)")
    results.details[row] = {
        "posts": len(texts),
        "seconds": summary["elapsed_s"],
        "wall_s": round(wall_s, 3),
        "wall_posts_per_s": round(len(texts) / wall_s, 3),
        "prepare_s": prepare_s,
        "source": "the --json summary's posts_per_s (from the first child ready to the last "
        "result stored; wall_* also the process start and boot); prepare_s: the untimed "
        "predict run before (makes the ONNX export)",
    }
