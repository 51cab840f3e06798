"""The benches: every suite's `--quick` through the real `python -m benches run` process, its
result JSON's metadata and the rows it promises; the harness's pure pieces; the committed
benchmark pages are what `python -m benches render` writes now.

No timing is asserted anywhere: the benches report, a person reads a full run.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from benches.harness import corpus, render, results
from benches.harness.queueing import Arrival, ideal_sojourns
from benches.harness.settings import parse_setting
from benches.harness.stats import nearest_rank, percentile
from benches.harness.tables import markdown_table
from benches.suites import SUITES, realtime

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]
Report = dict[str, Any]


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def positive(value: Any) -> bool:
    """A finite number above zero."""
    return is_number(value) and value > 0


def bench_env() -> dict[str, str]:
    """The environment of a bench process: no VOLFEFE_* setting, no model hub."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFEFE_")}
    env["HF_HUB_OFFLINE"] = "1"  # DATABASE_URL, when set, passes through: the benches use it
    return env


def benches(*args: str, timeout: float = 540) -> subprocess.CompletedProcess[str]:
    """`python -m benches ARGS` as a subprocess, from the checkout."""
    argv = [sys.executable, "-m", "benches", *args]
    return subprocess.run(
        argv, env=bench_env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def table_rows(stdout: str) -> list[list[str]]:
    """The cells of a printed Markdown table's rows (header and rule left out)."""
    rows = [line.split("|")[1:-1] for line in stdout.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[2:]]


def has_bf16() -> bool:
    """Whether this CPU runs the bf16 rows."""
    from volfefe.child.backends.openvino_backend import has_bf16

    return has_bf16()


# --- what each suite promises ------------------------------------------------------------------

THROUGHPUT_ROWS = (
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
THROUGHPUT_TARGETS = {
    "classify_fp32_vs_ceiling",
    "classify_fp32_vs_pipeline",
    "classify_int8_vs_pipeline",
    "jobs_vs_classify_fp32",
    "latency_overhead_ms",
    "cold_start_s",
    "child_rss_mb",
    "classify_onnx_vs_pipeline",
    "classify_onnx_int8_vs_pipeline",
    "onnx_cold_start_s",
    "onnx_int8_cold_start_s",
    "onnx_child_rss_mb",
    "onnx_int8_child_rss_mb",
}


def check_throughput(report: Report, rows: list[Report], stdout: str) -> None:
    """Every row ran (this checkout runs them all), with its ratios, targets and figures."""
    assert "total time:" in stdout
    assert report["errors"] == {} and report["not_run"] == {}
    assert [row["row"] for row in rows] == list(THROUGHPUT_ROWS)
    for row in rows:
        assert positive(row["posts_per_s"]), row
        assert is_number(row["x_pipeline"]) and is_number(row["x_ceiling"]), row
    assert positive(report["cold_start_s"]) and report["cold_starts_s"]
    for key in ("p50", "p95", "bare_p50"):
        assert is_number(report["latency_ms"][key]), key
    assert positive(report["child_rss_mb"])
    for quantize in ("fp32", "int8"):
        onnx = report["onnx"][quantize]
        assert is_number(onnx["cold_start_s"]) and is_number(onnx["child_rss_mb"]), quantize
        assert is_number(onnx["latency_ms"]["p50"]), quantize
        assert onnx["model_version"].endswith("+onnx" if quantize == "fp32" else "+onnx-int8")
    assert set(report["targets"]) == THROUGHPUT_TARGETS
    for key, target in report["targets"].items():
        assert target["met"] in (True, False, None), key
        assert target["value"] is None or is_number(target["value"]), key
    settings = report["settings"]
    assert settings["model_kind"] == "tiny" and settings["quick"] is True
    assert settings["database"] == (
        "DATABASE_URL server" if os.environ.get("DATABASE_URL") else "embedded"
    )


REALTIME_PHASES = ("idle", "load_50", "load_90")
REALTIME_STAGES = {"pickup", "fetch_inference", "bare_inference", "store", "notify"}


def check_realtime(report: Report, rows: list[Report], stdout: str) -> None:
    """Every phase on the backend asked for (`--backends`; each backend's child runs in the
    runtimes suite); `--capacity` sets the load phases' arrival rates and `--set` reaches the
    worker's settings."""
    assert "| backend | phase |" in stdout and "jobs / classify" in stdout
    assert report["model_kind"] == "tiny" and report["quick"] is True
    assert report["settings"] == {"VOLFEFE_JOBS_CONCURRENCY": "7"}
    expected = {"onnx_int8"}
    assert set(report["backends"]) == expected
    assert {row["backend"] for row in rows} == expected
    for name, row in report["backends"].items():
        assert is_number(row["idle"]["added_p50_ms"]) and is_number(row["idle"]["bare_p99_ms"])
        for phase in REALTIME_PHASES:
            figures = row[phase]
            assert figures["posts"] > 0, (name, phase)
            for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
                assert positive(figures[key]), (name, phase, key)
            # Pickup counts from the return of the INSERT's commit, which can reach the client
            # just after the worker has started the job: slightly negative, never much.
            assert is_number(figures["max_pickup_ms"]) and figures["max_pickup_ms"] > -50, name
            assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] <= figures["max_ms"]
            assert set(figures["breakdown_p50_ms"]) == REALTIME_STAGES
            assert all(is_number(v) for v in figures["breakdown_p50_ms"].values()), figures
            assert isinstance(figures["poll_waits"], int)
        assert row["idle"]["posts"] == report["sizes"]["idle"]
        for key in ("jobs_posts_per_s", "classify_posts_per_s", "jobs_vs_classify"):
            assert positive(row[key]), (name, key)
        assert row["job_slots"] == 7  # the worker's settings, not the default 128
        assert row["poll_interval_s"] > 0
        assert row["load_capacity_per_s"] == 12  # not the drain rate it measured
        assert (row["load_50"]["rate_per_s"], row["load_90"]["rate_per_s"]) == (6.0, 10.8)
    # The goals, each with its verdict; ratios against the same run's idle p99.
    goals = {f"onnx_int8_{goal[0]}" for goal in realtime.GOALS} | {"onnx_int8_jobs_vs_classify"}
    assert set(report["targets"]) == goals
    assert all(isinstance(t["met"], bool) or t["value"] is None for t in report["targets"].values())


RUNTIMES_CHILD_ROWS = {"onnx_fp32", "onnx_int8", "openvino_fp32", "openvino_int8_static"}
RUNTIMES_BF16_ROWS = {"openvino_bf16", "openvino_int8_static_bf16"}
RUNTIMES_PEER_ROWS = {"peer_openvino_fp32", "peer_openvino_int8_static"}


def check_runtimes(report: Report, rows: list[Report], stdout: str) -> None:
    """Every row, as ratios measured in the same run; the end-to-end row and the guard."""
    assert "x best peer" in stdout and "classify --all" in stdout
    children = RUNTIMES_CHILD_ROWS | (RUNTIMES_BF16_ROWS if has_bf16() else set())
    table = report["rows"]
    assert set(table) == children | RUNTIMES_PEER_ROWS == {row["row"] for row in rows}
    assert table["onnx_int8"]["vs_onnx_int8"] == 1.0
    assert table[report["best_peer"]]["vs_best_peer"] == 1.0
    for name, row in table.items():
        assert len(row["rounds"]) == 2 and all(positive(v) for v in row["rounds"]), name
        for key in ("posts_per_s", "vs_onnx_int8", "vs_best_peer", "p50_ms", "p95_ms"):
            assert positive(row[key]), (name, key)
        assert row["p95_ms"] >= row["p50_ms"]
        assert ("cold_start_s" in row) == (name in children)
        if name in children:
            assert positive(row["cold_start_s"]) and positive(row["child_rss_mb"]), name
    e2e = report["classify_all"]
    assert e2e["posts"] == 24 and positive(e2e["posts_per_s"]) and positive(e2e["vs_bare_loop"])
    assert positive(e2e["cold_bare_posts_per_s"]) and positive(e2e["vs_cold_bare_round"])
    goals = report["goals"]
    assert set(goals) == {
        "fastest",
        "fastest_int8",
        "int8_vs_best_peer",
        "fastest_float",
        "float_vs_peer_fp32",
        "idle_p50_ms",
        "classify_all_vs_bare_loop",
    }
    assert goals["fastest"] == e2e["row"] and goals["fastest"] in children
    assert goals["fastest_float"] in children and "int8" not in goals["fastest_float"]
    assert goals["fastest_int8"] in children and "int8" in goals["fastest_int8"]
    assert set(report["guard"]) == {"openvino_int8_static"} | (children & RUNTIMES_BF16_ROWS)
    for guard in report["guard"].values():
        assert guard["n"] > 0 and 0 <= guard["label_agreement"] <= 1
    assert report["settings"]["model_kind"] == "tiny" and report["settings"]["quick"] is True


def check_http(report: Report, rows: list[Report], stdout: str) -> None:
    """classify_many and both HTTP rows, as ratios to classify_many, with latencies."""
    assert "| http | `POST /api/v1/classify`, 16 clients, 1 text each |" in stdout
    table = report["rows"]
    assert set(table) == {"classify_many", "http", "http_batch8"}
    assert [row["row"] for row in rows] == ["classify_many", "http", "http_batch8"]
    for name, row in table.items():
        assert positive(row["posts_per_s"]) and is_number(row["vs_classify_many"]), name
    assert table["classify_many"]["vs_classify_many"] == 1.0
    for name in ("http", "http_batch8"):
        assert table[name]["p50_ms"] <= table[name]["p95_ms"], name
    assert table["http"]["requests"] == 48 and table["http_batch8"]["requests"] == 6
    assert report["target"]["met"] in (True, False)
    assert report["settings"]["quick"] is True and report["settings"]["clients"] == 16
    assert report["settings"]["database"] == (
        "DATABASE_URL server" if os.environ.get("DATABASE_URL") else "embedded"
    )


def check_shapes(report: Report, rows: list[Report], stdout: str) -> None:
    """`--sizes` picks the passes; each has a first and a second pass, and with `--passes`
    the median of the others; the fit over the padded tokens is reported."""
    sizes = ["1 x 16", "2 x 8", "1 x 32"]
    assert [cells[0] for cells in table_rows(stdout)] == sizes, stdout
    assert [row["rows_x_tokens"] for row in rows] == sizes
    for row in rows:
        assert positive(row["first_ms"]) and positive(row["second_ms"]), row
        assert positive(row["median_ms"]), row
    assert report["row"] == "openvino_fp32" and report["model_kind"] == "tiny"
    assert report["passes"] == 3 and set(report["fit"]) == {
        "ms_per_token",
        "fixed_ms",
        "pass_cost_tokens",
    }
    assert "a pass costs" in stdout


def check_bulk_order(report: Report, rows: list[Report], stdout: str) -> None:
    """Both orders for every budget, in the order given."""
    assert [cells[0] for cells in table_rows(stdout)] == ["2048", "512"], stdout
    for cells in table_rows(stdout):
        assert all(float(cell) > 0 for cell in cells[1:]), stdout
    assert [row["forward_tokens"] for row in rows] == [2048, 512]
    for row in rows:
        assert positive(row["callers_order_posts_per_s"]) and positive(row["sorted_posts_per_s"])
    assert report["posts"] == 40 and report["rounds"] == 2


def check_sinks(report: Report, rows: list[Report], stdout: str) -> None:
    """Both signals of every post, NOTIFY and webhook, as percentiles (no timing asserted)."""
    assert [cells[0] for cells in table_rows(stdout)] == ["notify", "webhook"], stdout
    assert [row["signal"] for row in rows] == ["notify", "webhook"]
    for row in rows:
        assert row["posts"] == 20
        assert is_number(row["p50_ms"]) and row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert report["quick"] is True


Check = Callable[[Report, list[Report], str], None]
QUICK_RUNS: list[Any] = [
    pytest.param("throughput", (), check_throughput, marks=pytest.mark.db, id="throughput"),
    pytest.param(
        "realtime",
        ("--backends", "onnx_int8", "--capacity", "12", "--set", "VOLFEFE_JOBS_CONCURRENCY=7"),
        check_realtime,
        marks=pytest.mark.db,
        id="realtime",
    ),
    pytest.param("runtimes", (), check_runtimes, marks=pytest.mark.db, id="runtimes"),
    pytest.param("http", (), check_http, marks=pytest.mark.db, id="http"),
    pytest.param(
        "shapes",
        ("--row", "openvino_fp32", "--sizes", "1x16,2x8,1x32", "--passes", "3"),
        check_shapes,
        id="shapes",
    ),
    pytest.param("bulk_order", ("--budgets", "2048,512"), check_bulk_order, id="bulk_order"),
    pytest.param("sinks", (), check_sinks, marks=pytest.mark.db, id="sinks"),
]


def test_every_suite_has_a_quick_run() -> None:
    assert [param.values[0] for param in QUICK_RUNS] == list(SUITES)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("suite", "args", "check"), QUICK_RUNS)
def test_quick_run_writes_the_result_json(
    tmp_path: Path, suite: str, args: tuple[str, ...], check: Check
) -> None:
    out = tmp_path / f"{suite}.json"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    proc = benches("run", suite, "--quick", "--json", str(out), *args)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    result = json.loads(out.read_text())

    assert result["suite"] == suite and result["ok"] is True
    assert result["commit"] == head.stdout.strip() and isinstance(result["dirty"], bool)
    assert datetime.fromisoformat(result["date"]).utcoffset() == timedelta(0)
    assert result["cpu"]["model"] and isinstance(result["cpu"]["flags"], list)
    assert all(f.startswith(("avx", "amx_", "fma", "f16c")) for f in result["cpu"]["flags"])
    assert result["cores"] == os.cpu_count()
    assert set(result["versions"]) == {"python", "torch", "transformers", "onnxruntime", "openvino"}
    assert result["versions"]["python"] and result["versions"]["torch"]
    given = [args[i + 1] for i, arg in enumerate(args) if arg == "--set"]
    assert result["settings"]["set"] == dict(parse_setting(item) for item in given)
    assert result["settings"]["environment"] == {}  # bench_env() passes no VOLFEFE_*
    assert result["settings"]["options"]["quick"] is True
    assert result["rows"] and all(isinstance(row, dict) for row in result["rows"])
    check(result["report"], result["rows"], proc.stdout)


def test_a_bad_size_is_refused() -> None:
    refused = benches("run", "shapes", "--quick", "--sizes", "1x16,0x16", timeout=120)
    assert refused.returncode == 2 and "not ROWSxTOKENS" in refused.stderr, refused.stderr


def test_a_bad_setting_is_refused() -> None:
    refused = benches("run", "realtime", "--quick", "--set", "WORKERS=2", timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert "--set takes VOLFEFE_NAME=VALUE, got 'WORKERS=2'" in refused.stderr


def test_list_names_every_suite() -> None:
    listed = benches("list", timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(SUITES)


def test_save_refuses_a_quick_run() -> None:
    refused = benches("run", "bulk_order", "--quick", "--save", timeout=120)
    assert refused.returncode != 0 and "--save keeps real runs only" in refused.stderr


# --- the harness's pure pieces -----------------------------------------------------------------


def test_percentile_interpolates_and_nearest_rank_picks_a_value() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    assert nearest_rank(values, 50) == 2.0 and nearest_rank(values, 99) == 4.0
    assert nearest_rank([], 50) is None
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_the_ideal_scheduler_preempts_by_rank_and_serves_each_rank_in_arrival_order() -> None:
    a_long = Arrival(0.0, 1.0, rank=2)
    shorts = [Arrival(0.2, 0.1, rank=0), Arrival(0.25, 0.1, rank=0)]
    later_long = Arrival(0.3, 1.0, rank=2)
    medium = Arrival(0.4, 0.3, rank=1)
    one = ideal_sojourns([a_long, *shorts, later_long, medium], servers=1)
    # shorts 0.2-0.3 and 0.3-0.4, the medium 0.4-0.7, the first long resumes until 1.5.
    assert one == pytest.approx([1.5, 0.1, 0.15, 2.2, 0.3])
    two = ideal_sojourns([a_long, *shorts, later_long, medium], servers=2)
    # Two shorts at once take both children (the long pauses 0.25-0.3); the medium then
    # pauses the later long (0.4-0.7), not the earlier one.
    assert two == pytest.approx([1.05, 0.1, 0.1, 1.35, 0.3])
    with pytest.raises(ValueError, match="at least 1"):
        ideal_sojourns([a_long], servers=0)


def test_the_ideal_scheduler_meets_queueing_theory_on_one_rank() -> None:
    # M/M/1 first come first served at load 0.5: mean time in system 1 / (mu - lambda) = 2.
    rng = random.Random(7)
    now, arrivals = 0.0, []
    for _ in range(40_000):
        now += rng.expovariate(0.5)
        arrivals.append(Arrival(now, rng.expovariate(1.0), rank=0))
    sojourns = ideal_sojourns(arrivals, servers=1)
    assert sum(sojourns) / len(sojourns) == pytest.approx(2.0, rel=0.06)


def test_markdown_table_aligns_columns() -> None:
    lines = markdown_table(["row", "posts/s"], "lr", [["pool", 12.5], ["jobs", None]])
    assert lines == ["| row | posts/s |", "| --- | ---: |", "| pool | 12.5 |", "| jobs | None |"]
    with pytest.raises(ValueError, match="one of l/r per column"):
        markdown_table(["a", "b"], "l", [])


def test_cpu_flags_and_slug() -> None:
    info = "model name\t: Intel(R) Xeon(R) Gold 6430\nflags\t\t: fpu sse avx2 amx_tile avx512f\n"
    assert results.cpu(info) == {
        "model": "Intel(R) Xeon(R) Gold 6430",
        "flags": ["amx_tile", "avx2", "avx512f"],
    }
    assert results.cpu_slug("Intel(R) Xeon(R) Gold 6430") == "intel-xeon-gold-6430"


def test_corpus_draws_are_reproducible() -> None:
    first = corpus.shuffled(300, 1234)
    assert first == corpus.shuffled(300, 1234) and len(first) == 300
    assert all(text.strip() for text in first)
    assert corpus.shuffled(300, 99) != first
    assert corpus.drawn(50, 1) == corpus.drawn(50, 1) != corpus.drawn(50, 2)
    assert corpus.drawn_each(50, 1) == corpus.drawn_each(50, 1) != corpus.drawn_each(50, 2)


def load_script(name: str) -> ModuleType:
    """Import scripts/NAME.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_finbert_like_vocabulary_has_finbert_size() -> None:
    builder = load_script("make_finbert_like_model")
    texts = builder.sample_texts()
    vocab = builder.vocabulary(texts)
    assert len(vocab) == builder.VOCAB_SIZE == 30873
    assert len(set(vocab)) == len(vocab)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = {w for text in texts for w in builder.basic_tokens(text)}
    assert words <= set(vocab)  # every sample word is one token, as with a real vocabulary


# --- the pages ---------------------------------------------------------------------------------

DESCRIPTIONS = {name: suite.description for name, suite in SUITES.items()}


def test_committed_pages_are_what_render_writes_now() -> None:
    stale = render.stale(render.pages(DESCRIPTIONS))
    assert stale == [], f"run `python -m benches render`: {stale}"


def a_result(suite: str, date: str, posts_per_s: float) -> dict[str, Any]:
    """A result JSON as `run` writes it (made-up figures, for the renderer only)."""
    return {
        "suite": suite,
        "date": date,
        "commit": "0123456789abcdef",
        "dirty": False,
        "cpu": {"model": "Example CPU 9000", "flags": ["avx2"]},
        "cores": 2,
        "versions": {"python": "3.11.7", "torch": "2.5.0", "openvino": None},
        "settings": {"set": {"VOLFEFE_WORKERS": "1"}, "environment": {}, "options": {}},
        "ok": True,
        "rows": [{"row": "pool", "posts_per_s": posts_per_s, "p50_ms": None}],
        "report": {},
    }


def test_render_shows_each_cpus_latest_result_and_flags_stale_pages(tmp_path: Path) -> None:
    docs, found = tmp_path / "docs", tmp_path / "results"
    (found / "example-cpu-9000").mkdir(parents=True)
    assert render.pages(DESCRIPTIONS, found, docs)[docs / "benchmarks.md"].endswith(
        "No results are committed yet.\n"
    )
    for name, date, pps in (
        ("old", "2025-01-01T00:00:00+00:00", 11.0),
        ("new", "2025-02-01T00:00:00+00:00", 22.0),
    ):
        path = found / "example-cpu-9000" / f"throughput-{name}.json"
        path.write_text(json.dumps(a_result("throughput", date, pps)))
    wanted = render.pages(DESCRIPTIONS, found, docs)
    page = docs / "benchmarks" / "example-cpu-9000.md"
    assert set(wanted) == {docs / "benchmarks.md", page}
    index = wanted[docs / "benchmarks.md"]
    assert "### Example CPU 9000" in index and "| pool | 22.00 | n/a |" in index
    assert "11.00" not in index  # the index shows the latest run only
    assert wanted[page].index("22.00") < wanted[page].index("11.00")  # newest first
    assert "VOLFEFE_WORKERS=1" in wanted[page] and "commit `0123456789ab`" in wanted[page]

    assert render.stale(wanted, docs) == sorted(wanted)
    render.write(wanted, docs)
    assert render.stale(wanted, docs) == []
    leftover = docs / "benchmarks" / "gone-cpu.md"
    leftover.write_text("old\n")
    assert render.stale(wanted, docs) == [leftover]
    render.write(wanted, docs)
    assert not leftover.exists()


def a_realtime_result(date: str, short_p99: float, drain: float) -> dict[str, Any]:
    """A realtime result JSON with made-up figures: short posts' p99 idle 20 ms, at 50 % load
    `short_p99`; long posts only idle."""

    def phase(p99: float) -> dict[str, Any]:
        return {"by_class": {"short": {"posts": 9, "p50_ms": 10.0, "p99_ms": p99}}}

    def load(p99: float, ideal_p99: float) -> dict[str, Any]:
        return {**phase(p99), "ideal_by_class": phase(ideal_p99)["by_class"]}

    idle = {"by_class": {**phase(20.0)["by_class"], "long": {"p50_ms": 120.0, "p99_ms": 150.0}}}
    report = {"idle": idle, "load_50": load(short_p99, 22.0), "load_90": load(2 * short_p99, 30.0)}
    return {
        **a_result("realtime", date, 0.0),
        "report": {"backends": {"onnx_int8": {**report, "jobs_posts_per_s": drain}}},
    }


def test_a_comparison_block_is_rendered_from_its_runs(tmp_path: Path) -> None:
    docs, found = tmp_path / "docs", tmp_path / "results"
    (found / "cpu" / "comparisons").mkdir(parents=True)
    arms = []
    for label, figures in (("default", [(400.0, 70.0), (600.0, 72.0)]), ("fast", [(50.0, 63.0)])):
        files = []
        for n, (p99, drain) in enumerate(figures):
            name = f"realtime-{label}-{n}.json"
            date = f"2026-12-06T0{n}:00:00+00:00"
            (found / "cpu" / name).write_text(json.dumps(a_realtime_result(date, p99, drain)))
            files.append(name)
        arms.append({"label": label, "results": files})
    manifest = {"command": "python -m benches run realtime", "arms": arms}
    (found / "cpu" / "comparisons" / "ab.json").write_text(json.dumps(manifest))
    docs.mkdir()
    page = docs / "sizing.md"
    page.write_text(
        "Before.\n<!-- comparison: cpu/comparisons/ab.json -->\nold\n<!-- end comparison -->\n"
    )

    text = render.pages(DESCRIPTIONS, found, docs)[page]
    assert text.startswith("Before.\n<!-- comparison: cpu/comparisons/ab.json -->\n")
    assert "old" not in text and text.endswith("<!-- end comparison -->\n")
    # Medians over each arm's runs; ratios against each run's idle p99 and the first arm.
    assert "| short (≤ 64 tokens) | default | 2 | 10.0 / 20.0 | 10.0 / 500.0 (25.0x) |" in text
    fast = "| fast | 1 | 10.0 / 20.0 | 10.0 / 50.0 (2.5x) | 10.0 / 100.0 (5.0x) | 1.1x / 1.5x |"
    assert f"| short {fast} 63.0 (0.89x) |" in text
    assert (
        "| long | fast | 1 | 120.0 / 150.0 | n/a / n/a (n/a) | n/a / n/a (n/a) | n/a / n/a |"
        in text
    )
    assert render.pages(DESCRIPTIONS, found, docs)[page] == text  # rendering is stable
