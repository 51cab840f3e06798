"""scripts/bench_runtimes.py runs every row (`--quick`) and writes every figure, as ratios
measured in the same run. No timing is asserted: the bench reports."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHILD_ROWS = {"onnx_fp32", "onnx_int8", "openvino_fp32", "openvino_int8_static"}
BF16_ROWS = {"openvino_bf16", "openvino_int8_static_bf16"}
PEER_ROWS = {"peer_openvino_fp32", "peer_openvino_int8_static"}


def positive(value: object) -> bool:
    """A finite number above zero."""
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.slow
@pytest.mark.db
@pytest.mark.timeout(600)
def test_quick_runtime_bench_writes_every_figure(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    out = tmp_path / "runtimes.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFEFE_")}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_runtimes.py"),
            "--quick",
            "--json",
            str(out),
        ],
        env={**env, "HF_HUB_OFFLINE": "1"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert "x best peer" in proc.stdout and "classify --all" in proc.stdout
    report = json.loads(out.read_text())
    rows = report["rows"]
    from volfefe.child.backends.openvino_backend import has_bf16

    children = CHILD_ROWS | (BF16_ROWS if has_bf16() else set())
    assert set(rows) == children | PEER_ROWS
    assert rows["onnx_int8"]["vs_onnx_int8"] == 1.0
    assert rows[report["best_peer"]]["vs_best_peer"] == 1.0
    for name, row in rows.items():
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
    guarded = {"openvino_int8_static"} | (children & BF16_ROWS)
    assert set(report["guard"]) == guarded
    for guard in report["guard"].values():
        assert guard["n"] > 0 and 0 <= guard["label_agreement"] <= 1
    assert report["settings"]["model_kind"] == "tiny" and report["settings"]["quick"] is True
