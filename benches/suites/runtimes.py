"""CPU runtimes for the model, side by side in one run: volfefe's backends and their peers.

    .venv/bin/python -m benches run runtimes [--model DIR] [--posts N] [--rounds N]
                                             [--latency-calls N] [--seed N] [--quick]
                                             [--json PATH]

Without `--model` it uses the FinBERT-sized random model of `make_finbert_like_model.py`,
built once into `<tmp>/volfefe-bench-cache/` (the harness's cache) and reused.
`--quick` uses the tiny test model, a few posts and rounds: every row runs in about a minute
and the figures mean nothing (a test runs it so the suite cannot rot). Nothing asserts a
time: the suite reports, and the lead runs the full bench on a quiet machine.

Every row classifies the same corpus (the non-empty texts of data/sample_posts.jsonl,
shuffled with `--seed`, repeated to `--posts`) with the same tokenisation and the same
length-sorted batches of at most 1,024 padded tokens, in this process, on all cores:

```
onnx_fp32            volfefe onnx backend, fused graph              (VOLFEFE_BACKEND=onnx)
onnx_int8            volfefe onnx int8 = ONNX Runtime dynamic int8   (the peer of issue 13)
openvino_fp32        volfefe openvino backend, fp32 numerics         (VOLFEFE_BACKEND=openvino)
openvino_bf16        the same IR at bf16 arithmetic, guarded         (VOLFEFE_QUANTIZE=bf16)
openvino_int8_static volfefe openvino int8-static (NNCF, calibrated) (VOLFEFE_QUANTIZE=int8-static)
openvino_int8_static_bf16  int8-static, its float parts at bf16      (int8-static-bf16)
peer_openvino_fp32   the same fp32 IR through OpenVINO's own API and defaults (compile_model)
peer_openvino_int8_static  the same int8-static IR through OpenVINO's own API and defaults
```

The two bf16 rows run only on CPUs with bf16 arithmetic. Rows run in interleaved rounds
(every row once per round, in a rotating order) and report the median posts/s over rounds,
as a ratio to `onnx_int8` and to the best peer row. Then, per row, single-text latency
(p50/p95; rows take turns by blocks of 10 texts, see `latency`); per volfefe backend, the
child's cold start (spawn to ready line, which includes its warm-up passes, median) and peak
RSS (VmHWM after classifying the corpus once); and end to end, `volfefe classify --all` with
our fastest row of the run against its own bare loop: a fresh database from $DATABASE_URL,
else an embedded server in a temporary folder; beside it the bare loop's first round in a
fresh process (the engine as a child loads and warms it, then the corpus once), which meets
each pass's shape once, as a fresh child does (OpenVINO prepares kernels per new shape).
Goals: our fastest int8 row and our fastest float row against the best peer and the fp32
peer. The guarded exports are calibrated and checked on the shipped sample posts with the
guard's thresholds relaxed (a random model's labels are coin flips); the guard's figures are
reported. The peers run at OpenVINO's
default precision (bf16 on CPUs that have it, reported). `--json PATH` writes every figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..harness.corpus import shuffled, write_posts
from ..harness.database import fresh_database
from ..harness.logs import log
from ..harness.model import cache_root, ensure_model
from ..harness.process import ROOT, run, vm_hwm_mb, volfefe
from ..harness.settings import offline_env
from ..harness.stats import percentile
from ..harness.suite import Outcome, Suite

ALL_OURS = {  # row -> (backend, quantize)
    "onnx_fp32": ("onnx", "none"),
    "onnx_int8": ("onnx", "int8"),
    "openvino_fp32": ("openvino", "none"),
    "openvino_bf16": ("openvino", "bf16"),
    "openvino_int8_static": ("openvino", "int8-static"),
    "openvino_int8_static_bf16": ("openvino", "int8-static-bf16"),
}
PEERS = {"peer_openvino_fp32": "openvino_fp32", "peer_openvino_int8_static": "openvino_int8_static"}
INT8_PEER = "peer_openvino_int8_static"
FP32_PEER = "peer_openvino_fp32"
BASELINE = "onnx_int8"
FORWARD_TOKENS = 1024
LAX_GUARD = {"min_agreement": 0.0, "max_dp": 1.0}


STEP_TIMEOUT = 900.0  # seconds for one volfefe command or a fresh-process round


# --- the rows -----------------------------------------------------------------------------------


@functools.cache
def ours() -> dict[str, tuple[str, str]]:
    """volfefe's rows this CPU can run: the bf16 ones only where OpenVINO has bf16."""
    from volfefe.child.backends.openvino_backend import has_bf16

    bf16 = has_bf16()
    return {row: v for row, v in ALL_OURS.items() if bf16 or not v[1].endswith("bf16")}


def rows() -> tuple[str, ...]:
    """Every row of this CPU: ours, then the peers."""
    return (*ours(), *PEERS)


def is_int8(row: str) -> bool:
    """Whether a row runs int8 weights (else its weights are float)."""
    return "int8" in row


def export_all(model: Path, exports: Path, which: Iterable[str] | None = None) -> dict[str, Path]:
    """The volfefe export of each row of `which` (default: every row of ours), cached in
    `exports`, made before any timing."""
    from volfefe.child.calibration import default_texts
    from volfefe.child.export import ensure_export
    from volfefe.child.export_openvino import Calibration
    from volfefe.protocol import GUARDED_SCHEMES

    folders = {}
    for row in ours() if which is None else which:
        backend, quantize = ours()[row]
        calibration = None
        if quantize in GUARDED_SCHEMES:
            calibration = Calibration(
                texts=default_texts(),
                source="shipped sample",
                min_agreement=LAX_GUARD["min_agreement"],
                max_dp=LAX_GUARD["max_dp"],
            )
        log(f"export {row} (cached after the first run)")
        folders[row] = ensure_export(
            exports, str(model), None, quantize, backend, calibration=calibration
        )
    return folders


def load_ours(row: str, folder: Path, threads: int) -> Any:
    """The Engine of one of volfefe's rows, loaded from its export as the child loads it."""
    from volfefe.child.backends import onnx_backend, openvino_backend

    module = onnx_backend if ours()[row][0] == "onnx" else openvino_backend
    return module.load_engine(
        folder, threads=threads, max_chars=20_000, forward_tokens=FORWARD_TOKENS
    )


def load_engines(folders: dict[str, Path], threads: int) -> dict[str, Any]:
    """row -> Engine: volfefe's backends as the child loads them, and the peers (OpenVINO's
    own defaults: compile_model with no configuration) behind the same tokenisation."""
    from volfefe.child.backends import openvino_backend

    engines: dict[str, Any] = {row: load_ours(row, folders[row], threads) for row in ours()}
    import openvino as ov

    for peer, mine in PEERS.items():
        compiled = ov.Core().compile_model(str(folders[mine] / openvino_backend.MODEL_FILE), "CPU")
        engines[peer] = dataclasses.replace(  # the runtime as it comes: no padding of ours
            engines[mine], predict=openvino_backend.predictor(compiled), single_pad=1
        )
    return engines


def throughput(engines: dict[str, Any], texts: list[str], rounds: int) -> dict[str, list[float]]:
    """posts/s of every row in each round; rows interleaved, order rotated each round."""
    for engine in engines.values():  # warm-up: first-call allocations are not the steady state
        engine.warm_up()
        engine.classify(texts[:16])
    rates: dict[str, list[float]] = {row: [] for row in engines}
    order = list(engines)
    for r in range(rounds):
        for row in order[r % len(order) :] + order[: r % len(order)]:
            started = time.perf_counter()
            engines[row].classify(texts)
            rates[row].append(len(texts) / (time.perf_counter() - started))
        log(f"round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items()))
    return rates


LATENCY_BLOCK = 10


def latency(engines: dict[str, Any], texts: list[str], calls: int) -> dict[str, list[float]]:
    """Milliseconds of single-text classify calls. Rows take turns by blocks of texts (order
    rotated each block), each block opened by one untimed call: ONNX Runtime's threads spin
    for a while after each call, and a row timed right after an onnx row would pay for it, as
    no child does (a child runs one runtime)."""
    times: dict[str, list[float]] = {row: [] for row in engines}
    order = list(engines)
    for block, start in enumerate(range(0, calls, LATENCY_BLOCK)):
        chunk = texts[start : min(start + LATENCY_BLOCK, calls)]
        for row in order[block % len(order) :] + order[: block % len(order)]:
            engines[row].classify([chunk[0]])
            for text in chunk:
                started = time.perf_counter()
                engines[row].classify([text])
                times[row].append((time.perf_counter() - started) * 1000)
    return times


def child_figures(
    folder: Path, backend: str, texts: list[str], threads: int
) -> tuple[float, float]:
    """(seconds from spawn to the ready line, peak RSS in MiB after classifying `texts`)."""
    argv = [sys.executable, "-m", "volfefe.child", "--serve", "--backend", backend]
    argv += ["--export-dir", str(folder), "--threads", str(threads)]
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready = json.loads(proc.stdout.readline())
        cold = time.monotonic() - started
        if ready.get("type") != "ready":
            raise RuntimeError(f"no ready line from {backend}: {ready}")
        proc.stdin.write(json.dumps({"id": 1, "texts": texts}).encode() + b"\n")
        proc.stdin.flush()
        proc.stdout.readline()
        rss = vm_hwm_mb(proc.pid)
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    return cold, rss


def cold_round(folder: Path, row: str, posts: int, seed: int, threads: int) -> float:
    """posts/s of one pass over the corpus by a fresh engine, in a fresh process (a runtime's
    per-shape caches are process-wide), after the warm-up a child does."""
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "from benches.suites import runtimes as b; "
        "args = sys.argv[4:]; "
        "print(b.cold_round_here(Path(sys.argv[2]), sys.argv[3], *map(int, args)))"
    )
    argv = [sys.executable, "-c", code, str(ROOT), str(folder), row]
    out = run([*argv, str(posts), str(seed), str(threads)], env=os.environ, timeout=STEP_TIMEOUT)
    return float(json.loads(out.splitlines()[-1]))


def cold_round_here(folder: Path, row: str, posts: int, seed: int, threads: int) -> float:
    """`cold_round`'s body, run in the fresh process."""
    from volfefe.child.backends import onnx_backend, openvino_backend

    module = onnx_backend if ours()[row][0] == "onnx" else openvino_backend
    engine = module.load_engine(
        folder, threads=threads, max_chars=20_000, forward_tokens=FORWARD_TOKENS
    )
    engine.warm_up()
    texts = shuffled(posts, seed)
    started = time.perf_counter()
    engine.classify(texts)
    return len(texts) / (time.perf_counter() - started)


def end_to_end(
    model: Path, exports: Path, texts: list[str], work: Path, row: str
) -> dict[str, Any]:
    """`volfefe classify --all --json` with the backend of `row` on a fresh database."""
    posts = write_posts(work / "posts.jsonl", texts, "runtimes")
    with fresh_database(work, "runtimes") as db_env:
        env = {
            **os.environ,
            **db_env,
            "VOLFEFE_MODEL": str(model),
            "VOLFEFE_BACKEND": ours()[row][0],
            "VOLFEFE_QUANTIZE": ours()[row][1],
            "VOLFEFE_EXPORT_CACHE": str(exports),
            "VOLFEFE_GUARD_MIN_AGREEMENT": str(LAX_GUARD["min_agreement"]),
            "VOLFEFE_GUARD_MAX_DP": str(LAX_GUARD["max_dp"]),
        }
        volfefe(["db", "migrate"], env, STEP_TIMEOUT)
        volfefe(["import", str(posts)], env, STEP_TIMEOUT)
        out = volfefe(["classify", "--all", "--json"], env, STEP_TIMEOUT)
        summary = json.loads(out.splitlines()[-1])
    if summary.get("succeeded") != len(texts):
        raise RuntimeError(f"classify --all did not classify every post: {summary}")
    return {"row": row, "posts_per_s": float(summary["posts_per_s"]), "posts": len(texts)}


# --- report -------------------------------------------------------------------------------------


def report_of(
    rates: dict[str, list[float]],
    times: dict[str, list[float]],
    children: dict[str, tuple[float, float]],
    e2e: dict[str, Any] | None,
    guard: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Every figure, with the ratios the issue asks for."""
    pps = {row: statistics.median(v) for row, v in rates.items()}
    best_peer = max(PEERS, key=lambda p: pps[p])
    fastest = fastest_of(pps)
    fastest_int8 = max((r for r in ours() if is_int8(r)), key=lambda r: pps[r])
    fastest_float = max((r for r in ours() if not is_int8(r)), key=lambda r: pps[r])
    table: dict[str, dict[str, Any]] = {}
    for row in rows():
        table[row] = {
            "posts_per_s": round(pps[row], 2),
            "rounds": [round(v, 2) for v in rates[row]],
            "vs_onnx_int8": round(pps[row] / pps[BASELINE], 3),
            "vs_best_peer": round(pps[row] / pps[best_peer], 3),
            "p50_ms": round(percentile(times[row], 50), 2),
            "p95_ms": round(percentile(times[row], 95), 2),
        }
        if row in children:
            table[row]["cold_start_s"] = round(children[row][0], 3)
            table[row]["child_rss_mb"] = round(children[row][1], 1)
    goals = {
        "fastest": fastest,
        "fastest_int8": fastest_int8,
        "int8_vs_best_peer": table[fastest_int8]["vs_best_peer"],
        "fastest_float": fastest_float,
        "float_vs_peer_fp32": round(pps[fastest_float] / pps[FP32_PEER], 3),
        "idle_p50_ms": table[fastest]["p50_ms"],
    }
    if e2e is not None:
        e2e["vs_bare_loop"] = round(e2e["posts_per_s"] / pps[e2e["row"]], 3)
        e2e["vs_cold_bare_round"] = round(e2e["posts_per_s"] / e2e["cold_bare_posts_per_s"], 3)
        goals["classify_all_vs_bare_loop"] = e2e["vs_bare_loop"]
    return {
        "rows": table,
        "best_peer": best_peer,
        "goals": goals,
        "classify_all": e2e,
        "guard": guard,
        "settings": settings,
    }


def fastest_of(pps: dict[str, float]) -> str:
    """Our row with the most posts/s."""
    return max(ours(), key=lambda row: pps[row])


def print_table(report: dict[str, Any]) -> None:
    """The table on stdout."""
    print(
        f"{'row':27} {'posts/s':>8} {'x onnx_int8':>11} {'x best peer':>11} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'cold s':>7} {'RSS MiB':>8}"
    )
    for row, r in report["rows"].items():
        cold = f"{r['cold_start_s']:7.2f}" if "cold_start_s" in r else f"{'':7}"
        rss = f"{r['child_rss_mb']:8.0f}" if "child_rss_mb" in r else f"{'':8}"
        print(
            f"{row:27} {r['posts_per_s']:8.1f} {r['vs_onnx_int8']:11.2f} "
            f"{r['vs_best_peer']:11.2f} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f} {cold} {rss}"
        )
    if report["classify_all"]:
        e2e = report["classify_all"]
        print(
            f"classify --all ({e2e['row']}): {e2e['posts_per_s']:.1f} posts/s = "
            f"{e2e['vs_bare_loop']:.2f} x its bare loop; its first round in a fresh process "
            f"{e2e['cold_bare_posts_per_s']:.1f} posts/s, classify --all = "
            f"{e2e['vs_cold_bare_round']:.2f} x that"
        )
    for row, g in report["guard"].items():
        print(
            f"{row} guard on {g['n']} held-out posts: label agreement "
            f"{g['label_agreement']:.3f}, max |dp| {g['max_abs_dp']:.4f} (thresholds relaxed)"
        )
    print("goals: " + ", ".join(f"{k} {v}" for k, v in report["goals"].items()))
    print(
        f"peer rows: OpenVINO defaults (precision {report['settings']['peer_precision']}); "
        "volfefe's openvino rows run at f32 unless named bf16"
    )


def rows_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per row: posts/s, its ratios, latency, and a child's cold start and RSS."""
    return [
        {
            "row": row,
            "posts_per_s": r["posts_per_s"],
            "x_onnx_int8": r["vs_onnx_int8"],
            "x_best_peer": r["vs_best_peer"],
            "p50_ms": r["p50_ms"],
            "p95_ms": r["p95_ms"],
            "cold_start_s": r.get("cold_start_s"),
            "child_rss_mb": r.get("child_rss_mb"),
        }
        for row, r in report["rows"].items()
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The suite's own options."""
    parser.add_argument("--model", type=Path, help="model folder (default: FinBERT-sized)")
    parser.add_argument("--posts", type=int, help="corpus size (default 300, quick 24)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 6, quick 2)")
    parser.add_argument(
        "--latency-calls", type=int, help="single-text calls per row (default 50, quick 5)"
    )
    parser.add_argument("--seed", type=int, default=1234, help="corpus shuffle and model seed")


def run_suite(args: argparse.Namespace, settings: Mapping[str, str]) -> Outcome:
    """Run every row and print the table."""
    from volfefe.protocol import GUARDED_SCHEMES

    offline_env()
    for name in ("VOLFEFE_BACKEND", "VOLFEFE_QUANTIZE", "VOLFEFE_MODEL", "VOLFEFE_EXPORT_CACHE"):
        os.environ.pop(name, None)
    os.environ.update(settings)
    posts = args.posts or (24 if args.quick else 300)
    rounds = args.rounds or (2 if args.quick else 6)
    calls = args.latency_calls or (5 if args.quick else 50)
    threads = os.cpu_count() or 1
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="volfefe-bench-rt-") as tmp:
        work = Path(tmp)
        model, kind = ensure_model(args.model, args.quick, work, args.seed)
        exports = work / "exports" if args.quick else cache_root() / "exports-runtimes"
        folders = export_all(model, exports)
        guard = {
            row: json.loads((folders[row] / "volfefe-openvino.json").read_text())["guard"]
            for row, (backend, quantize) in ours().items()
            if quantize in GUARDED_SCHEMES
        }
        texts = shuffled(posts, args.seed)
        engines = load_engines(folders, threads)
        rates = throughput(engines, texts, rounds)
        times = latency(engines, shuffled(calls, args.seed + 1), calls)
        del engines
        children = {
            row: child_figures(folders[row], backend, texts, threads)
            for row, (backend, _) in ours().items()
        }
        fastest = fastest_of({row: statistics.median(v) for row, v in rates.items()})
        e2e = end_to_end(model, exports, texts, work, fastest)
        e2e["cold_bare_posts_per_s"] = cold_round(
            folders[fastest], fastest, posts, args.seed, threads
        )
    import openvino as ov

    report_settings = {
        "peer_precision": str(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")),
        "model": str(model),
        "model_kind": kind,
        "posts": posts,
        "rounds": rounds,
        "latency_calls": calls,
        "threads": threads,
        "forward_tokens": FORWARD_TOKENS,
        "quick": args.quick,
        "seconds": round(time.monotonic() - started, 1),
    }
    report = report_of(rates, times, children, e2e, guard, report_settings)
    print_table(report)
    return Outcome(report, rows_of(report))


SUITE = Suite(
    name="runtimes",
    description="CPU runtimes for the model, side by side in one run: volfefe's backends and "
    "their peers.",
    add_arguments=add_arguments,
    run=run_suite,
)
