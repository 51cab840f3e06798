"""scripts/bench.py runs every code path (`--quick`) and writes every figure; the FinBERT-sized
model's vocabulary has finbert-tone's size. No timing is asserted anywhere: the bench reports.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
NULLABLE_ROWS: set[str] = set()  # every row runs on this checkout
TARGETS = {
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


def load_script(name: str) -> ModuleType:
    """Import scripts/NAME.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def load_bench_module(name: str) -> ModuleType:
    """Import scripts/volfefe_bench/NAME.py, the package behind scripts/bench.py (loading the
    script puts the package's folder on sys.path, as running it does)."""
    load_script("bench")
    return importlib.import_module(f"volfefe_bench.{name}")


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.slow
@pytest.mark.db
@pytest.mark.timeout(600)
def test_quick_bench_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFEFE_")}
    env["HF_HUB_OFFLINE"] = "1"  # DATABASE_URL, when set, passes through: the bench uses it
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--json", str(out)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert "total time:" in proc.stdout
    report = json.loads(out.read_text())

    assert report["errors"] == {}
    pps = report["posts_per_s"]
    assert set(pps) == set(ROWS)
    for row in ROWS:
        if pps[row] is None:
            assert row in NULLABLE_ROWS, row
            assert report["not_run"][row], f"{row} is null without a reason"
        else:
            assert is_number(pps[row]) and pps[row] > 0, (row, pps[row])
        for base in ("to_pipeline", "to_ceiling"):
            assert (report["ratios"][base][row] is None) == (pps[row] is None), (base, row)
    assert set(report["not_run"]) <= NULLABLE_ROWS

    assert is_number(report["cold_start_s"]) and report["cold_start_s"] > 0
    assert all(is_number(s) for s in report["cold_starts_s"]) and report["cold_starts_s"]
    for key in ("p50", "p95", "bare_p50"):
        assert is_number(report["latency_ms"][key]), key
    assert is_number(report["child_rss_mb"]) and report["child_rss_mb"] > 0
    for quantize in ("fp32", "int8"):
        onnx = report["onnx"][quantize]
        assert is_number(onnx["cold_start_s"]) and is_number(onnx["child_rss_mb"]), quantize
        assert is_number(onnx["latency_ms"]["p50"]), quantize
        assert onnx["model_version"].endswith("+onnx" if quantize == "fp32" else "+onnx-int8")
    assert set(report["targets"]) == TARGETS
    for key, target in report["targets"].items():
        assert target["met"] in (True, False, None), key
        assert target["value"] is None or is_number(target["value"]), key
    assert isinstance(report["machine"]["cores"], int)
    assert isinstance(report["machine"]["torch"], str)
    settings = report["settings"]
    assert settings["model_kind"] == "tiny" and settings["quick"] is True
    assert settings["database"] == (
        "DATABASE_URL server" if env.get("DATABASE_URL") else "embedded"
    )
    assert is_number(report["total_s"])


def test_finbert_like_vocabulary_has_finbert_size() -> None:
    builder = load_script("make_finbert_like_model")
    texts = builder.sample_texts()
    vocab = builder.vocabulary(texts)
    assert len(vocab) == builder.VOCAB_SIZE == 30873
    assert len(set(vocab)) == len(vocab)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = {w for text in texts for w in builder.basic_tokens(text)}
    assert words <= set(vocab)  # every sample word is one token, as with a real vocabulary


def test_bench_corpus_is_reproducible() -> None:
    corpus = load_bench_module("corpus")
    first, again = corpus.load_corpus(300, 1234), corpus.load_corpus(300, 1234)
    assert first == again and len(first) == 300
    assert all(text.strip() for text in first)
    assert corpus.load_corpus(300, 99) != first
