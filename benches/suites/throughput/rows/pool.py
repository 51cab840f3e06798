"""Pool rows: `Classifier.classify_many` throughput (pool, pool_onnx), then each child's peak
RSS and the idle single-text latency, on torch and on ONNX Runtime (fp32 and int8)."""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from ....harness.logs import log
from ....harness.process import vm_hwm_mb
from ....harness.stats import percentile
from ....harness.tables import fmt
from ..results import Context, Plan, Results, record_error, timed_row
from .in_process import InProcess, single_forward


def pool_row(ctx: Context) -> None:
    """The torch pool, with the in-process model for the latency comparison (released here:
    nothing after this step needs it)."""
    bare, ctx.bare = ctx.bare, None
    bench_pool(ctx.plan, ctx.texts, ctx.results, bare)


def pool_onnx_row(ctx: Context) -> None:
    """The ONNX pool: the pool_onnx row (fp32), and RSS and latency for fp32 and int8."""
    bench_pool(ctx.plan, ctx.texts, ctx.results, None, backend="onnx")


def bench_pool(
    plan: Plan,
    texts: list[str],
    results: Results,
    bare: InProcess | None,
    backend: str = "torch",
) -> None:
    """`Classifier.classify_many` throughput, then each child's VmHWM, then idle latency."""
    from volfefe import Classifier, Settings

    settings = Settings.from_env(os.environ, model=str(plan.model), backend=backend)
    if backend == "onnx":
        for quantize in ("none", "int8"):
            onnx_pool_figures(plan, texts, results, settings.replace(quantize=quantize))
        return
    with Classifier(settings) as clf:
        started = time.monotonic()
        clf.start()
        boot_s = time.monotonic() - started
        clf.classify_many(texts[:2])  # warm-up, as for the in-process rows

        def pool() -> dict[str, Any]:
            out = clf.classify_many(texts)
            assert len(out) == len(texts)
            return {"boot_s": round(boot_s, 3), "workers": settings.workers}

        timed_row(results, "pool", len(texts), pool)  # torch: the reference
        try:
            results.child_rss_mb_each = [round(vm_hwm_mb(pid), 1) for pid in clf.pids()]
            results.child_rss_mb = max(results.child_rss_mb_each)
        except Exception as exc:
            record_error(results, "child_rss_mb", exc)
        try:
            latency(plan, texts, results, clf, bare)
        except Exception as exc:
            record_error(results, "latency", exc)


def onnx_pool_figures(plan: Plan, texts: list[str], results: Results, settings: Any) -> None:
    """The ONNX pool: throughput (fp32 only, row pool_onnx), peak RSS and idle latency."""
    from volfefe import Classifier

    figures: dict[str, Any] = {}
    with Classifier(settings) as clf:
        clf.start()
        clf.classify_many(texts[:2])
        if settings.quantize == "none":
            timed_row(
                results, "pool_onnx", len(texts), lambda: {"n": len(clf.classify_many(texts))}
            )
        else:
            clf.classify_many(texts)  # the same work, so peak RSS compares
        figures["child_rss_mb"] = max(round(vm_hwm_mb(pid), 1) for pid in clf.pids())
        calls = []
        for text in texts[: plan.latency_calls]:
            started = time.perf_counter()
            clf.classify(text)
            calls.append((time.perf_counter() - started) * 1000)
        figures["latency_ms"] = {"p50": statistics.median(calls), "p95": percentile(calls, 95)}
        figures["model_version"] = clf.model_version
    results.onnx.setdefault(settings.quantize, {}).update(figures)
    log(f"onnx {settings.quantize}: {figures}")


def latency(
    plan: Plan, texts: list[str], results: Results, clf: Any, bare: InProcess | None
) -> None:
    """Single texts, one at a time: `clf.classify` on the idle pool, each next to a bare
    in-process forward of the same text, so both see the same machine (interleaved)."""
    sample = texts[: plan.latency_calls]
    pool_ms: list[float] = []
    bare_ms: list[float] = []
    for text in sample[:3]:  # warm-up: new shapes are slow once
        if bare is not None:
            single_forward(bare.model, bare.tokenizer, text)
    for text in sample:
        if bare is not None:
            started = time.perf_counter()
            single_forward(bare.model, bare.tokenizer, text)
            bare_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        clf.classify(text)
        pool_ms.append((time.perf_counter() - started) * 1000)
    results.latency_ms["p50"] = statistics.median(pool_ms)
    results.latency_ms["p95"] = percentile(pool_ms, 95)
    if bare_ms:
        results.latency_ms["bare_p50"] = statistics.median(bare_ms)
        results.latency_ms["bare_p95"] = percentile(bare_ms, 95)
    log(
        f"latency: pool p50 {results.latency_ms['p50']:.1f} ms, "
        f"bare forward p50 {fmt(results.latency_ms['bare_p50'], '.1f')} ms"
    )
