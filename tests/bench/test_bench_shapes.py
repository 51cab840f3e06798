"""scripts/bench_shapes.py --quick runs and prints a first and a second pass for every size.

No timing is asserted: the bench reports, the lead compares within a run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFEFE_")}
    env["HF_HUB_OFFLINE"] = "1"
    argv = [sys.executable, str(ROOT / "scripts" / "bench_shapes.py"), "--quick", *args]
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=540)


def size_rows(stdout: str) -> list[list[str]]:
    rows = [line.split("|")[1:-1] for line in stdout.splitlines() if line.startswith("| ")]
    return rows[2:]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("row", ["onnx_int8", "openvino_int8_static"])
def test_quick_shapes_bench_prints_both_passes_of_every_size(row: str) -> None:
    proc = run_bench("--row", row)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    sizes = size_rows(proc.stdout)
    assert len(sizes) >= 5, proc.stdout
    for cells in sizes:
        assert float(cells[1]) > 0 and float(cells[2]) > 0, proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sizes_picks_the_passes() -> None:
    proc = run_bench("--row", "onnx_int8", "--sizes", "1x16,2x8")
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert [cells[0].strip() for cells in size_rows(proc.stdout)] == ["1 x 16", "2 x 8"]


@pytest.mark.parametrize("bad", ["1x", "x16", "0x16", "1x16,"])
def test_a_bad_size_is_refused(bad: str) -> None:
    refused = run_bench("--sizes", bad)
    assert refused.returncode == 2 and "not ROWSxTOKENS" in refused.stderr, refused.stderr
