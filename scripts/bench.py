#!/usr/bin/env python3
"""Throughput, latency, cold start and memory of volfefe, next to the bare model, in one run.

    .venv/bin/python scripts/bench.py [--model DIR] [--posts N] [--seed N] [--quick]
                                      [--json PATH] [--keep]

Without `--model` it benchmarks a FinBERT-sized random model (`make_finbert_like_model.py`:
finbert-tone's architecture and vocabulary size, so the compute is the real model's), built
once into a cache folder under the system temp dir and reused. `--quick` uses the tiny test
model and a few posts instead: every code path runs, in about a minute, and the figures mean
nothing (CI runs it so this script cannot rot). Nothing here asserts a timing: it reports.

The corpus is the non-empty texts of data/sample_posts.jsonl (many short posts, a few of
several thousand characters), shuffled with `--seed` and repeated to `--posts` posts.

Rows, in posts per second:

```
spawn          one `python worker/classify.py --model DIR` process per post (the first design)
pipeline       transformers pipeline("text-classification"), one text per call, in-process
pipeline_b16   the same pipeline over the list with batch_size=16
ceiling        bare loop: tokenise, sort by length, batches of <= 1024 padded tokens, forward
pool           Classifier(...).classify_many(texts) through the children, no database
classify_fp32  `python -m volfefe classify --all --json` on a fresh database (its posts_per_s)
classify_int8  the same with VOLFEFE_QUANTIZE=int8 (n/a, with the reason, where unsupported)
jobs           `jobs enqueue --all`, then `jobs worker` from its start until no job is waiting
```

Also: cold start (spawn to ready line of `worker/classify.py --serve`, median of 3), latency of
single `Classifier.classify` calls on an idle pool (p50/p95 of 50) next to the bare single-text
forward p50 (interleaved with them, text by text, so both see the same machine), and each
child's peak RSS (VmHWM) after the pool run. `--quick` times 1 spawned post, 1 cold start and
10 single calls. In-process rows and the pool get a short warm-up first. The targets of the
throughput issue are printed with whether each is met; they only mean something for the
FinBERT-sized model on a quiet machine.

The in-process rows (pipeline, pipeline_b16, ceiling, bare forward) run torch; the product rows
(pool, classify, jobs, cold start) run whatever backend volfefe's settings resolve (with
`backend=auto`, ONNX Runtime when installed). Exports the children load are made once, before
the timed rows (an untimed `volfefe predict` per CLI row), into the bench's own cache: the work
folder with `--quick`, else `<tmp>/volfefe-bench-cache/onnx` next to the cached model.

The database rows use $DATABASE_URL's server when set (a fresh database per row, dropped
afterwards), else the embedded server in a fresh temporary VOLFEFE_DATA_DIR per row (stopped
and deleted afterwards). `--json PATH` writes every figure, the ratios, the targets, the
machine and the settings. Exit status: 0 every row ran (or is documented n/a), 1 a row failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import gc
import hashlib
import json
import math
import os
import platform
import random
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
WORKER = ROOT / "worker" / "classify.py"
SAMPLE_POSTS = ROOT / "data" / "sample_posts.jsonl"
if str(ROOT) not in sys.path:  # run from a checkout without the package installed
    sys.path.insert(0, str(ROOT))

ROWS = (
    "spawn",
    "pipeline",
    "pipeline_b16",
    "ceiling",
    "ceiling_onnx",
    "ceiling_onnx_int8",
    "pool",
    "pool_onnx",
    "classify_fp32",
    "classify_int8",
    "classify_onnx",
    "classify_onnx_int8",
    "jobs",
)
# row -> (backend, quantize) for the rows that run volfefe itself
VARIANTS = {
    "classify_fp32": ("torch", "none"),
    "classify_int8": ("torch", "int8"),
    "classify_onnx": ("onnx", "none"),
    "classify_onnx_int8": ("onnx", "int8"),
}
IN_PROCESS = ("pipeline", "pipeline_b16", "ceiling")
DEFAULT_POSTS, QUICK_POSTS = 300, 24
SPAWN_POSTS, QUICK_SPAWN_POSTS = 3, 1
LATENCY_CALLS, QUICK_LATENCY_CALLS = 50, 10
COLD_STARTS, QUICK_COLD_STARTS = 3, 1
CEILING_BATCH_TOKENS = 1024
PIPELINE_BATCH = 16
MAX_LENGTH = 512
POLL_INTERVAL = 0.1  # seconds between job-queue polls
STOP_WAIT = 30.0  # seconds a stopped process gets before SIGKILL
GIB_MB = 1024.0
NOTES = {
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


# --- helpers ------------------------------------------------------------------------------------


def log(message: str) -> None:
    """Progress on stderr, so stdout holds the report only."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation, like numpy's default.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50), percentile([1.0, 2.0, 3.0, 4.0], 95)
    (2.5, 3.85)
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(value: float | None, base: float | None) -> float | None:
    """value / base, or None when either is missing or base is 0."""
    if value is None or not base:
        return None
    return value / base


def tail(text: str | bytes, lines: int = 15) -> str:
    """The last lines of a process's output, for error messages."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.strip().splitlines()[-lines:])


def run(argv: Sequence[str], *, env: Mapping[str, str], timeout: float, stdin: bytes = b"") -> str:
    """Run a command (argument list, no shell); its stdout, or RuntimeError with stderr's tail."""
    proc = subprocess.run(
        list(argv), input=stdin, capture_output=True, env=dict(env), cwd=ROOT, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[1:4])}... exited {proc.returncode}:\n{tail(proc.stderr)}"
            f"\n{tail(proc.stdout, 5)}"
        )
    return proc.stdout.decode("utf-8", "replace")


def volfefe(args: Sequence[str], env: Mapping[str, str], timeout: float) -> str:
    """`python -m volfefe ARGS` as a subprocess; its stdout."""
    return run([sys.executable, "-m", "volfefe", *args], env=env, timeout=timeout)


def read_line(stream: IO[bytes], deadline: float) -> bytes:
    """One line from an unbuffered pipe, waiting until `deadline` (monotonic) at most."""
    fd = stream.fileno()
    buf = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line before the deadline")
            if not selector.select(left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
    return bytes(buf).split(b"\n", 1)[0]


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int | None:
    """Send `sig`, wait up to STOP_WAIT seconds, then SIGKILL; the exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=STOP_WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout=STOP_WAIT)


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set size of a process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


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


# --- model and corpus ---------------------------------------------------------------------------


def bench_cache_root() -> Path:
    """The bench's own cache (models, exports), reused across runs."""
    return Path(tempfile.gettempdir()) / "volfefe-bench-cache"


def model_cache_dir(seed: int) -> Path:
    """Where the FinBERT-sized model is cached: keyed by the builder, the sample posts and seed."""
    digest = hashlib.sha256()
    for source in (SCRIPTS / "make_finbert_like_model.py", SAMPLE_POSTS):
        digest.update(source.read_bytes())
    name = f"finbert-like-{digest.hexdigest()[:10]}-seed{seed}"
    return bench_cache_root() / name


def build_model(script: str, out: Path, args: Sequence[str] = ()) -> None:
    """Run a model builder script into `out`."""
    run(
        [sys.executable, str(SCRIPTS / script), str(out), *args],
        env=os.environ,
        timeout=900,
    )


def ensure_model(model: Path | None, quick: bool, seed: int, workdir: Path) -> tuple[Path, str]:
    """The model folder to benchmark and what kind it is (custom, tiny, finbert-like)."""
    if model is not None:
        if not (model / "config.json").is_file():
            raise SystemExit(f"bench: {model} is not a model folder (no config.json)")
        return model.resolve(), "custom"
    if quick:
        out = workdir / "tiny-model"
        log("building the tiny model")
        build_model("make_tiny_model.py", out)
        return out, "tiny"
    cached = model_cache_dir(seed)
    if (cached / ".complete").is_file():
        log(f"reusing the FinBERT-sized model in {cached}")
        return cached, "finbert-like"
    log(f"building the FinBERT-sized model into {cached} (once)")
    cached.parent.mkdir(parents=True, exist_ok=True)
    building = cached.with_name(f"{cached.name}.building-{os.getpid()}")
    build_model("make_finbert_like_model.py", building, ["--seed", str(seed)])
    (building / ".complete").write_text("ok\n")
    try:
        building.rename(cached)
    except OSError:  # another bench finished the same build first
        shutil.rmtree(building, ignore_errors=True)
    return cached, "finbert-like"


def load_corpus(posts: int, seed: int) -> list[str]:
    """`posts` texts: the non-empty sample texts, shuffled with `seed`, repeated as needed."""
    texts: list[str] = []
    with SAMPLE_POSTS.open(encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line).get("text") if line.strip() else None
            if isinstance(text, str) and text.strip():
                texts.append(text)
    rng = random.Random(seed)
    corpus: list[str] = []
    while len(corpus) < posts:
        batch = texts[:]
        rng.shuffle(batch)
        corpus += batch
    return corpus[:posts]


def write_posts(path: Path, texts: Sequence[str], tag: str) -> Path:
    """The corpus as importable JSON Lines (external_id unique per source)."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            record = {
                "source": f"bench_{tag}",
                "external_id": f"bench-{i:06d}",
                "author": "bench",
                "text": text,
                "published_at": (start + timedelta(minutes=i)).isoformat(),
            }
            fh.write(json.dumps(record) + "\n")
    return path


# --- in-process rows: pipeline, pipeline_b16, ceiling, bare single-text forward -----------------


@dataclasses.dataclass
class InProcess:
    """The transformers pipeline and its model and tokenizer, loaded in this process."""

    pipeline: Any
    model: Any
    tokenizer: Any


def load_in_process(plan: Plan) -> InProcess:
    """Load the model with transformers' pipeline, with as many torch threads as cores."""
    import torch
    import transformers

    torch.set_num_threads(plan.cores)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    classifier = transformers.pipeline(
        "text-classification", model=str(plan.model), truncation=True, device="cpu"
    )
    classifier.model.eval()
    return InProcess(classifier, classifier.model, classifier.tokenizer)


def bench_in_process(plan: Plan, texts: list[str], results: Results, bare: InProcess) -> None:
    """The transformers pipeline (one text per call, then batch_size=16) and the bare ceiling."""

    def one_by_one() -> dict[str, Any]:
        for text in texts:
            bare.pipeline(text)
        return {}

    def batched() -> dict[str, Any]:
        out = bare.pipeline(texts, batch_size=PIPELINE_BATCH)
        assert len(out) == len(texts)
        return {"batch_size": PIPELINE_BATCH}

    def ceiling() -> dict[str, Any]:
        forwards = ceiling_loop(bare.model, bare.tokenizer, texts, CEILING_BATCH_TOKENS)
        return {"forward_passes": forwards, "batch_tokens": CEILING_BATCH_TOKENS}

    timed_row(results, "pipeline", len(texts), one_by_one)
    timed_row(results, "pipeline_b16", len(texts), batched)
    timed_row(results, "ceiling", len(texts), ceiling)


def in_process_rows(plan: Plan, texts: list[str], results: Results) -> InProcess | None:
    """Load the model in this process and time the in-process rows; the loaded model (kept
    for the latency comparison), or None when it could not load."""
    log("--- in-process")
    try:
        bare = load_in_process(plan)
        bare.pipeline(texts[0])  # warm-up: first-call allocations are not throughput
    except Exception as exc:
        record_error(results, "in-process", exc)
        for row in (*IN_PROCESS, "latency_bare"):
            results.errors.setdefault(row, results.errors["in-process"])
        return None
    bench_in_process(plan, texts, results, bare)
    return bare


def ceiling_loop(model: Any, tokenizer: Any, texts: Sequence[str], budget: int) -> int:
    """Tokenise, sort by length, forward batches of <= `budget` padded tokens; the pass count."""
    import torch

    encoded: list[list[int]] = tokenizer(list(texts), truncation=True, max_length=MAX_LENGTH)[
        "input_ids"
    ]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    batches: list[list[int]] = []
    for index in order:  # sorted, so the newest row is the longest of its batch
        if batches and (len(batches[-1]) + 1) * len(encoded[index]) <= budget:
            batches[-1].append(index)
        else:
            batches.append([index])
    with torch.inference_mode():
        for batch in batches:
            padded = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt")
            logits = model(
                input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]
            ).logits
            torch.softmax(logits.float(), dim=-1).tolist()
    return len(batches)


def single_forward(model: Any, tokenizer: Any, text: str) -> list[float]:
    """Tokenise one text and run it through the model: what one pool request computes."""
    import torch

    with torch.inference_mode():
        inputs = tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        logits = model(**inputs).logits
        probs: list[float] = torch.softmax(logits.float(), dim=-1)[0].tolist()
    return probs


# --- pool, latency, memory, cold start, spawn ---------------------------------------------------


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


def bench_onnx_ceiling(plan: Plan, texts: list[str], results: Results, quantize: str) -> None:
    """The bare in-process loop on ONNX Runtime: the exported model, no pool, no pipes."""
    from volfefe.child.backends.onnx_backend import load_engine
    from volfefe.child.export import ensure_export

    folder = ensure_export(Path(os.environ["VOLFEFE_ONNX_CACHE"]), str(plan.model), None, quantize)
    engine = load_engine(
        folder, threads=plan.cores, max_chars=20_000, forward_tokens=CEILING_BATCH_TOKENS
    )
    engine.classify(texts[:4])  # warm-up
    row = "ceiling_onnx" if quantize == "none" else "ceiling_onnx_int8"
    timed_row(
        results,
        row,
        len(texts),
        lambda: {"n": len(engine.classify(texts)), "batch_tokens": CEILING_BATCH_TOKENS},
    )


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
        f"bare forward p50 {_fmt(results.latency_ms['bare_p50'], '.1f')} ms"
    )


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


def bench_cold_start(plan: Plan, results: Results) -> None:
    """Median of `plan.cold_starts` cold starts of the child, spawned as the pool spawns it."""
    from volfefe import Settings

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


def bench_spawn(plan: Plan, texts: list[str], results: Results) -> None:
    """The first design: one one-shot child process per post."""
    subset = texts[: plan.spawn_posts]

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

    timed_row(results, "spawn", len(subset), spawn)


# --- database rows: classify (fp32, int8) and jobs ----------------------------------------------


@contextlib.contextmanager
def fresh_database(plan: Plan, tag: str) -> Iterator[dict[str, str]]:
    """Environment for the CLI pointing at a fresh, empty database (removed afterwards).

    With $DATABASE_URL: a new database on that server, dropped WITH (FORCE) at the end.
    Without: a new embedded server in its own VOLFEFE_DATA_DIR, stopped and deleted at the end.
    """
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    server = os.environ.get("DATABASE_URL")
    if server:
        name = f"volfefe_bench_{tag}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield {"DATABASE_URL": make_conninfo(server, dbname=name)}
        finally:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        return
    data_dir = plan.workdir / f"data-{tag}"
    try:
        yield {"VOLFEFE_DATA_DIR": str(data_dir)}
    finally:
        stop_embedded(data_dir / "pgdata")
        shutil.rmtree(data_dir, ignore_errors=True)


def stop_embedded(pgdata: Path) -> None:
    """Stop an embedded server volfefe left running (it never stops its own, by design)."""
    if not (pgdata / "postmaster.pid").exists():
        return
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
    # As root, pgserver runs postgres as the "pgserver" user; pg_ctl refuses to run as root.
    user = "pgserver" if os.geteuid() == 0 else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


def database_url(db_env: Mapping[str, str]) -> str:
    """The URL the CLI uses with this environment (attaches to the embedded server)."""
    from volfefe import Settings
    from volfefe.store.connect import resolve_database_url

    settings = Settings.from_env(db_env, model="unused")
    return resolve_database_url(settings, auto_migrate=False)


def prepare_model(plan: Plan, env: Mapping[str, str]) -> float:
    """Seconds of one untimed `volfefe predict`: it makes whatever the children load once
    (with the ONNX backend, the cached export for this quantisation), so a row measures the
    steady state rather than a one-time export."""
    started = time.monotonic()
    volfefe(["predict", "Stocks rally as the trade deal is signed"], env, plan.timeout)
    return round(time.monotonic() - started, 3)


def prepare_database(plan: Plan, texts: list[str], env: Mapping[str, str], tag: str) -> None:
    """Create/migrate the schema and import the corpus."""
    volfefe(["db", "migrate"], env, plan.timeout)
    posts = write_posts(plan.workdir / f"posts-{tag}.jsonl", texts, tag)
    out = volfefe(["import", str(posts)], env, plan.timeout)
    if f"inserted {len(texts)}," not in out:
        raise RuntimeError(f"import did not insert {len(texts)} posts: {out.strip()}")


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


def bench_classify(plan: Plan, texts: list[str], results: Results, row: str) -> None:
    """`volfefe classify --all --json` on a fresh database; the row is its posts_per_s."""
    backend, quantize = VARIANTS[row]
    if quantize != "none":
        reason = quantize_support()
        if reason:
            raise RowNotAvailable(reason)
    with fresh_database(plan, row.replace("_", "")) as db_env:
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


def bench_jobs(plan: Plan, texts: list[str], results: Results) -> None:
    """Enqueue every post, start `jobs worker`, time until no job is waiting or running."""
    from volfefe.jobs.queue import QUEUE, status
    from volfefe.store.connect import connect

    with fresh_database(plan, "jobs") as db_env:
        env = {**os.environ, **db_env, "VOLFEFE_MODEL": str(plan.model), "VOLFEFE_BACKEND": "torch"}
        prepare_s = prepare_model(plan, env)
        prepare_database(plan, texts, env, "jobs")
        queued = json.loads(volfefe(["jobs", "enqueue", "--all", "--json"], env, plan.timeout))
        if queued["queued"] != len(texts):
            raise RuntimeError(f"enqueue queued {queued['queued']} of {len(texts)} posts")
        url = database_url(db_env)
        log_path = plan.workdir / "jobs-worker.log"
        with connect(url) as conn, log_path.open("wb") as worker_log:
            started = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "-m", "volfefe", "jobs", "worker"],
                env=env,
                cwd=ROOT,
                stdout=worker_log,
                stderr=subprocess.STDOUT,
            )
            try:
                counts = wait_drained(conn, QUEUE, status, proc, started + plan.timeout, log_path)
                elapsed = time.monotonic() - started
            finally:
                code = stop_process(proc)
    if counts.get("succeeded", 0) != len(texts):
        raise RuntimeError(f"not every job succeeded: {counts}")
    results.posts_per_s["jobs"] = len(texts) / elapsed
    log(f"jobs: {len(texts) / elapsed:.2f} posts/s ({len(texts)} posts in {elapsed:.1f} s)")
    from volfefe import Settings

    concurrency = Settings.from_env(env).jobs_concurrency
    results.details["jobs"] = {
        "posts": len(texts),
        "seconds": round(elapsed, 3),
        "concurrency": concurrency,
        "worker_exit_after_sigterm": code,
        "prepare_s": prepare_s,
        "source": "worker start to no job todo/doing (includes the child's boot)",
    }


def wait_drained(
    conn: Any,
    queue: str,
    status: Callable[[Any], dict[str, Any]],
    proc: subprocess.Popen[bytes],
    deadline: float,
    log_path: Path,
) -> dict[str, int]:
    """Poll the queue until nothing is todo/doing; the final counts by state."""
    while True:
        counts: dict[str, int] = status(conn)["queues"].get(queue, {})
        if counts.get("todo", 0) + counts.get("doing", 0) == 0:
            return counts
        if proc.poll() is not None:
            raise RuntimeError(
                f"jobs worker exited {proc.returncode}:\n{tail(log_path.read_bytes())}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs not drained within the timeout: {counts}")
        time.sleep(POLL_INTERVAL)


# --- rows, targets, report ----------------------------------------------------------------------


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


def step(results: Results, name: str, rows: Sequence[str], body: Callable[[], None]) -> None:
    """Run one measurement step; a failure or n/a is recorded against its rows, not raised."""
    log(f"--- {name}")
    try:
        body()
    except RowNotAvailable as exc:
        for row in rows:
            results.not_run[row] = str(exc)
        log(f"{name}: n/a ({exc})")
    except Exception as exc:
        record_error(results, name, exc)
        for row in rows:
            if results.posts_per_s.get(row) is None:
                results.errors.setdefault(row, results.errors[name])


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
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return str(value)


def machine() -> dict[str, Any]:
    """Cores, library versions and load: what the figures depend on."""

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "cores": os.cpu_count(),
        "torch": version("torch"),
        "transformers": version("transformers"),
        "python": platform.python_version(),
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


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


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
            f"{row:<19} {_fmt(pps[row]):>9} {_fmt(to_pipe[row]):>11} {_fmt(to_ceil[row]):>10} "
            f"{detail.get('posts', ''):>6}  {note}"
        )
    lat = report["latency_ms"]
    print()
    print(
        f"cold start (spawn to ready, median of {len(report['cold_starts_s'])}): "
        f"{_fmt(report['cold_start_s'])} s {report['cold_starts_s']}"
    )
    print(
        f"latency, idle pool, single texts ({settings['latency_calls']} calls): "
        f"p50 {_fmt(lat['p50'], '.1f')} ms, p95 {_fmt(lat['p95'], '.1f')} ms; "
        f"bare single-text forward p50 {_fmt(lat['bare_p50'], '.1f')} ms"
    )
    print(
        f"child peak RSS (VmHWM): {_fmt(report['child_rss_mb'], '.0f')} MiB "
        f"{report['child_rss_mb_each']}"
    )
    for quantize, figures in report["onnx"].items():
        lat_onnx = figures.get("latency_ms", {})
        print(
            f"onnx {quantize}: cold start {_fmt(figures.get('cold_start_s'))} s, child peak RSS "
            f"{_fmt(figures.get('child_rss_mb'), '.0f')} MiB, idle latency p50 "
            f"{_fmt(lat_onnx.get('p50'), '.1f')} ms, p95 {_fmt(lat_onnx.get('p95'), '.1f')} ms"
        )
    print()
    print("targets (throughput and ONNX issues):")
    for target in report["targets"].values():
        met = {True: "met", False: "NOT met", None: "n/a"}[target["met"]]
        value = _fmt(target["value"])
        print(
            f"  {target['label']:<44} {value:>8} {target['unit']:<3}  "
            f"goal {target['op']} {target['goal']:<7g} {met}"
        )
    if settings["model_kind"] == "tiny":
        print("  (tiny model: these figures exercise the code paths and mean nothing)")
    print()
    print(f"total time: {report['total_s']:.1f} s")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
        quick = args.quick
        plan = Plan(
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
        texts = load_corpus(plan.posts, plan.seed)
        log(f"model {model} ({kind}), {len(texts)} posts, work folder {workdir}")
        bare = in_process_rows(plan, texts, results)
        step(results, "pool", ["pool"], lambda: bench_pool(plan, texts, results, bare))
        bare = None
        for quantize, row in (("none", "ceiling_onnx"), ("int8", "ceiling_onnx_int8")):
            step(
                results,
                row,
                [row],
                functools.partial(bench_onnx_ceiling, plan, texts, results, quantize),
            )
        step(
            results,
            "pool onnx",
            ["pool_onnx"],
            lambda: bench_pool(plan, texts, results, None, backend="onnx"),
        )
        gc.collect()  # the in-process model is not needed any more
        step(results, "cold start", [], lambda: bench_cold_start(plan, results))
        step(results, "spawn", ["spawn"], lambda: bench_spawn(plan, texts, results))
        for row in VARIANTS:
            step(results, row, [row], functools.partial(bench_classify, plan, texts, results, row))
        step(results, "jobs", ["jobs"], lambda: bench_jobs(plan, texts, results))
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


if __name__ == "__main__":
    sys.exit(main())
