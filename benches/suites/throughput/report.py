"""The results as one JSON-able report (figures, ratios, targets, machine, settings) and as the
printed table."""

from __future__ import annotations

import dataclasses
import os
import platform
from typing import Any

from ...harness.results import versions
from ...harness.stats import ratio
from ...harness.tables import fmt
from .results import NOTES, ROWS, Plan, Results
from .rows.in_process import CEILING_BATCH_TOKENS, PIPELINE_BATCH

GIB_MB = 1024.0


def targets(results: Results) -> dict[str, dict[str, Any]]:
    """The throughput issue's targets: the measured value, the goal and whether it is met."""
    pps = results.posts_per_s
    lat = results.latency_ms
    onnx = results.onnx
    overhead = (
        lat["p50"] - lat["bare_p50"]
        if lat["p50"] is not None and lat["bare_p50"] is not None
        else None
    )
    goals: list[tuple[str, str, float | None, str, float, str]] = [
        ("classify_fp32_vs_ceiling", "(6) classify_fp32 >= 0.9 x ceiling",
         ratio(pps["classify_fp32"], pps["ceiling"]), ">=", 0.9, "x"),
        ("classify_fp32_vs_pipeline", "(6) classify_fp32 >= 2.2 x pipeline",
         ratio(pps["classify_fp32"], pps["pipeline"]), ">=", 2.2, "x"),
        ("classify_int8_vs_pipeline", "(7) classify_int8 >= 3.5 x pipeline",
         ratio(pps["classify_int8"], pps["pipeline"]), ">=", 3.5, "x"),
        ("jobs_vs_classify_fp32", "(8) jobs >= 0.6 x classify_fp32",
         ratio(pps["jobs"], pps["classify_fp32"]), ">=", 0.6, "x"),
        ("latency_overhead_ms", "pool p50 - bare forward p50 <= 10 ms",
         overhead, "<=", 10.0, "ms"),
        ("cold_start_s", "cold start <= 10 s", results.cold_start_s, "<=", 10.0, "s"),
        ("child_rss_mb", "child peak RSS <= 1.2 GB", results.child_rss_mb, "<=",
         1.2 * GIB_MB, "MiB"),
        ("classify_onnx_vs_pipeline", "(onnx) classify_onnx >= 2.6 x pipeline",
         ratio(pps["classify_onnx"], pps["pipeline"]), ">=", 2.6, "x"),
        ("classify_onnx_int8_vs_pipeline", "(onnx) classify_onnx_int8 >= 4.2 x pipeline",
         ratio(pps["classify_onnx_int8"], pps["pipeline"]), ">=", 4.2, "x"),
        ("onnx_cold_start_s", "(onnx) cold start fp32 <= 2 s",
         onnx.get("none", {}).get("cold_start_s"), "<=", 2.0, "s"),
        ("onnx_int8_cold_start_s", "(onnx) cold start int8 <= 2 s",
         onnx.get("int8", {}).get("cold_start_s"), "<=", 2.0, "s"),
        ("onnx_child_rss_mb", "(onnx) child peak RSS fp32 <= 0.6 GB",
         onnx.get("none", {}).get("child_rss_mb"), "<=", 0.6 * GIB_MB, "MiB"),
        ("onnx_int8_child_rss_mb", "(onnx) child peak RSS int8 <= 0.35 GB",
         onnx.get("int8", {}).get("child_rss_mb"), "<=", 0.35 * GIB_MB, "MiB"),
    ]  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    for key, label, value, op, goal, unit in goals:
        met = None if value is None else (value >= goal if op == ">=" else value <= goal)
        out[key] = {"label": label, "value": value, "goal": goal, "op": op, "unit": unit}
        out[key]["met"] = met
    return out


def settings_used(plan: Plan) -> dict[str, Any]:
    """The configuration the rows ran with (volfefe's Settings as the CLI builds them)."""
    from volfefe import Settings

    settings = Settings.from_env(os.environ, model=str(plan.model))
    return {
        "model": str(plan.model),
        "model_kind": plan.model_kind,
        "posts": plan.posts,
        "seed": plan.seed,
        "quick": plan.quick,
        "spawn_posts": plan.spawn_posts,
        "latency_calls": plan.latency_calls,
        "cold_starts": plan.cold_starts,
        "workers": settings.workers,
        "threads_per_child": child_threads(settings),
        "backend": str(getattr(settings, "resolved_backend", "torch")),
        "batch_size": settings.batch_size,
        "jobs_concurrency": settings.jobs_concurrency,
        "in_process_threads": plan.cores,
        "ceiling_batch_tokens": CEILING_BATCH_TOKENS,
        "pipeline_batch_size": PIPELINE_BATCH,
        "database": "DATABASE_URL server" if os.environ.get("DATABASE_URL") else "embedded",
        "volfefe_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("VOLFEFE_")},
        "volfefe_settings": {  # every field, so new tunables show up without editing this
            f.name: _jsonable(getattr(settings, f.name))
            for f in dataclasses.fields(settings)
            if f.name not in ("database_url", "worker_env")  # a URL may hold a password
        },
    }


def child_threads(settings: Any) -> int:
    """Torch threads per child as the pool computes them (`threads` 0 means cores // workers)."""
    value = getattr(settings, "child_threads", None)  # a property now; once a method
    if callable(value):
        value = value()
    return int(value) if isinstance(value, int) else int(settings.threads)


def _jsonable(value: Any) -> Any:
    """A settings value as JSON: scalars as they are, sequences as lists, the rest as str."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return str(value)


def machine() -> dict[str, Any]:
    """Cores, library versions and load: what the figures depend on."""
    found = versions()
    return {
        "cores": os.cpu_count(),
        "torch": found["torch"],
        "transformers": found["transformers"],
        "python": found["python"],
        "platform": platform.platform(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def to_json(
    plan: Plan, results: Results, total_s: float, load_start: list[float]
) -> dict[str, Any]:
    """Everything of the run as one JSON-able dict."""
    pps = results.posts_per_s
    return {
        "posts_per_s": {k: _round(v) for k, v in pps.items()},
        "cold_start_s": _round(results.cold_start_s),
        "cold_starts_s": results.cold_starts_s,
        "latency_ms": {k: _round(v) for k, v in results.latency_ms.items()},
        "child_rss_mb": _round(results.child_rss_mb),
        "child_rss_mb_each": results.child_rss_mb_each,
        "onnx": {("fp32" if k == "none" else k): v for k, v in results.onnx.items()},
        "ratios": {
            "to_pipeline": {k: _round(ratio(v, pps["pipeline"])) for k, v in pps.items()},
            "to_ceiling": {k: _round(ratio(v, pps["ceiling"])) for k, v in pps.items()},
        },
        "targets": {k: {**t, "value": _round(t["value"])} for k, t in targets(results).items()},
        "details": results.details,
        "not_run": results.not_run,
        "errors": results.errors,
        "machine": {**machine(), "loadavg_start": load_start},
        "settings": settings_used(plan),
        "total_s": round(total_s, 1),
    }


def rows_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per row of the table: posts/s and its ratios to pipeline and ceiling."""
    pps = report["posts_per_s"]
    to_pipe, to_ceil = report["ratios"]["to_pipeline"], report["ratios"]["to_ceiling"]
    return [
        {"row": row, "posts_per_s": pps[row], "x_pipeline": to_pipe[row], "x_ceiling": to_ceil[row]}
        for row in ROWS
    ]


def _round(value: float | None, digits: int = 3) -> float | None:
    """A figure rounded for the JSON, None kept."""
    return None if value is None else round(value, digits)


def print_report(report: dict[str, Any]) -> None:
    """The human-readable report on stdout."""
    pps = report["posts_per_s"]
    to_pipe, to_ceil = report["ratios"]["to_pipeline"], report["ratios"]["to_ceiling"]
    settings, mach = report["settings"], report["machine"]
    print()
    print(
        f"volfefe bench: {settings['model_kind']} model {settings['model']}, "
        f"{settings['posts']} posts (seed {settings['seed']}), {mach['cores']} cores, "
        f"torch {mach['torch']}, transformers {mach['transformers']}"
    )
    print(
        f"settings: backend {settings['backend']}, workers {settings['workers']} x threads "
        f"{settings['threads_per_child']}, "
        f"batch_size {settings['batch_size']}, jobs concurrency {settings['jobs_concurrency']}, "
        f"database {settings['database']}; load average at start {mach['loadavg_start']}"
    )
    print()
    print(f"{'row':<19} {'posts/s':>9} {'x pipeline':>11} {'x ceiling':>10} {'posts':>6}  note")
    for row in ROWS:
        detail = report["details"].get(row, {})
        note = NOTES[row]
        if row in report["not_run"]:
            note = f"n/a: {report['not_run'][row]}"
        elif row in report["errors"]:
            note = f"FAILED: {report['errors'][row].splitlines()[0][:90]}"
        print(
            f"{row:<19} {fmt(pps[row]):>9} {fmt(to_pipe[row]):>11} {fmt(to_ceil[row]):>10} "
            f"{detail.get('posts', ''):>6}  {note}"
        )
    lat = report["latency_ms"]
    print()
    print(
        f"cold start (spawn to ready, median of {len(report['cold_starts_s'])}): "
        f"{fmt(report['cold_start_s'])} s {report['cold_starts_s']}"
    )
    print(
        f"latency, idle pool, single texts ({settings['latency_calls']} calls): "
        f"p50 {fmt(lat['p50'], '.1f')} ms, p95 {fmt(lat['p95'], '.1f')} ms; "
        f"bare single-text forward p50 {fmt(lat['bare_p50'], '.1f')} ms"
    )
    print(
        f"child peak RSS (VmHWM): {fmt(report['child_rss_mb'], '.0f')} MiB "
        f"{report['child_rss_mb_each']}"
    )
    for quantize, figures in report["onnx"].items():
        lat_onnx = figures.get("latency_ms", {})
        print(
            f"onnx {quantize}: cold start {fmt(figures.get('cold_start_s'))} s, child peak RSS "
            f"{fmt(figures.get('child_rss_mb'), '.0f')} MiB, idle latency p50 "
            f"{fmt(lat_onnx.get('p50'), '.1f')} ms, p95 {fmt(lat_onnx.get('p95'), '.1f')} ms"
        )
    print()
    print("targets (throughput and ONNX issues):")
    for target in report["targets"].values():
        met = {True: "met", False: "NOT met", None: "n/a"}[target["met"]]
        value = fmt(target["value"])
        print(
            f"  {target['label']:<44} {value:>8} {target['unit']:<3}  "
            f"goal {target['op']} {target['goal']:<7g} {met}"
        )
    if settings["model_kind"] == "tiny":
        print("  (tiny model: these figures exercise the code paths and mean nothing)")
    print()
    print(f"total time: {report['total_s']:.1f} s")
