"""scripts/bench_realtime.py --quick runs every phase on every backend and writes every figure.

No timing is asserted: the bench reports, the lead compares within a run.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from volfefe.child.backends.openvino_backend import has_bf16

ROOT = Path(__file__).resolve().parents[2]
PHASES = ("idle", "load_50", "load_90")
STAGES = {"pickup", "fetch_inference", "bare_inference", "store", "notify"}


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.slow
@pytest.mark.db
@pytest.mark.timeout(600)
def test_quick_realtime_bench_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "realtime.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFEFE_")}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_realtime.py"),
            "--quick",
            "--json",
            str(out),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert "| backend | phase |" in proc.stdout and "jobs / classify" in proc.stdout
    report = json.loads(out.read_text())
    assert report["model_kind"] == "tiny" and report["quick"] is True
    expected = {"torch", "onnx_fp32", "onnx_int8", "openvino_int8_static"}
    if has_bf16():
        expected.add("openvino_int8_static_bf16")
    assert set(report["backends"]) == expected
    for row in report["backends"].values():  # what the path adds over each text's inference
        assert is_number(row["idle"]["added_p50_ms"]) and is_number(row["idle"]["bare_p99_ms"])
    for name, row in report["backends"].items():
        for phase in PHASES:
            figures = row[phase]
            assert figures["posts"] > 0, (name, phase)
            for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
                assert is_number(figures[key]) and figures[key] > 0, (name, phase, key)
            # Pickup counts from the return of the INSERT's commit, which can reach the client
            # just after the worker has started the job: slightly negative, never much.
            assert is_number(figures["max_pickup_ms"]) and figures["max_pickup_ms"] > -50, name
            assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] <= figures["max_ms"]
            assert set(figures["breakdown_p50_ms"]) == STAGES
            assert all(is_number(v) for v in figures["breakdown_p50_ms"].values()), figures
            assert isinstance(figures["poll_waits"], int)
        assert row["idle"]["posts"] == report["sizes"]["idle"]
        for key in ("jobs_posts_per_s", "classify_posts_per_s", "jobs_vs_classify"):
            assert is_number(row[key]) and row[key] > 0, (name, key)
        assert row["job_slots"] > 1 and row["poll_interval_s"] > 0


@pytest.mark.slow
@pytest.mark.db
@pytest.mark.timeout(600)
def test_a_fixed_capacity_sets_the_load_phases_arrival_rates_and_set_gives_a_setting(
    tmp_path: Path,
) -> None:
    out = tmp_path / "realtime.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFEFE_")}
    argv = [sys.executable, str(ROOT / "scripts" / "bench_realtime.py"), "--quick"]
    argv += ["--backends", "onnx_int8", "--capacity", "12", "--json", str(out)]
    argv += ["--set", "VOLFEFE_JOBS_CONCURRENCY=7"]
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    report = json.loads(out.read_text())
    assert report["settings"] == {"VOLFEFE_JOBS_CONCURRENCY": "7"}
    row = report["backends"]["onnx_int8"]
    assert row["job_slots"] == 7  # the worker's settings, not the default 128
    assert row["load_capacity_per_s"] == 12  # not the drain rate it measured
    assert (row["load_50"]["rate_per_s"], row["load_90"]["rate_per_s"]) == (6.0, 10.8)
