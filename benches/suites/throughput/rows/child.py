"""One child at a time: its cold start (spawn to ready line, torch and ONNX) and the spawn row
(one one-shot `worker/classify.py` process per post, the first design)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from ....harness.logs import log
from ....harness.process import STOP_WAIT, WORKER, read_line, run, tail
from ..results import Context, timed_row


def cold_start_once(argv: Sequence[str], timeout: float) -> float:
    """Seconds from spawning the child (`argv`, in serve mode) to its ready line."""
    with tempfile.TemporaryFile() as stderr:
        started = time.monotonic()
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, bufsize=0
        )
        assert proc.stdout is not None and proc.stdin is not None
        try:
            line = read_line(proc.stdout, started + timeout)
            elapsed = time.monotonic() - started
        finally:
            proc.stdin.close()  # EOF: a serving child exits
            try:
                code = proc.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            proc.stdout.close()
        if not line.startswith(b"{") or json.loads(line).get("type") != "ready":
            stderr.seek(0)
            raise RuntimeError(f"no ready line (exit {code}): {tail(stderr.read())}")
    return elapsed


def child_argv(settings: Any) -> list[str]:
    """The child's argument list as the pool builds it, backend options included (for the
    ONNX backend this finds, or makes, the cached export first: not part of a cold start)."""
    from volfefe.supervisor.port import worker_argv

    try:
        from volfefe.supervisor.provision import backend_args
    except ImportError:  # a checkout without backends: the child takes no backend options
        return list(worker_argv(settings))
    return list(worker_argv(settings, asyncio.run(backend_args(settings))))


def bench_cold_start(ctx: Context) -> None:
    """Median of `plan.cold_starts` cold starts of the child, spawned as the pool spawns it."""
    from volfefe import Settings

    plan, results = ctx.plan, ctx.results
    gc.collect()  # the in-process model (dropped by the pool step) is not needed any more
    base = Settings.from_env(os.environ, model=str(plan.model))
    argv = child_argv(base.replace(backend="torch"))
    results.details["cold_start"] = {"argv": argv[1:]}
    results.cold_starts_s = [
        round(cold_start_once(argv, plan.timeout), 3) for _ in range(plan.cold_starts)
    ]
    results.cold_start_s = statistics.median(results.cold_starts_s)
    log(f"cold start: {results.cold_start_s:.2f} s (median of {results.cold_starts_s})")
    for quantize in ("none", "int8"):
        argv = child_argv(base.replace(backend="onnx", quantize=quantize))  # exports first
        starts = [round(cold_start_once(argv, plan.timeout), 3) for _ in range(plan.cold_starts)]
        results.onnx.setdefault(quantize, {})["cold_start_s"] = statistics.median(starts)
        log(f"cold start onnx {quantize}: {statistics.median(starts):.2f} s {starts}")


def bench_spawn(ctx: Context) -> None:
    """The first design: one one-shot child process per post."""
    plan = ctx.plan
    subset = ctx.texts[: plan.spawn_posts]

    def spawn() -> dict[str, Any]:
        for text in subset:
            out = run(
                [sys.executable, str(WORKER), "--model", str(plan.model)],
                env=os.environ,
                timeout=plan.timeout,
                stdin=text.encode(),
            )
            if "sentiment" not in json.loads(out.strip().splitlines()[-1]):
                raise RuntimeError(f"unexpected one-shot output: {out[:200]!r}")
        return {}

    timed_row(ctx.results, "spawn", len(subset), spawn)
