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


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("row", ["onnx_int8", "openvino_int8_static"])
def test_quick_shapes_bench_prints_both_passes_of_every_size(row: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFEFE_")}
    env["HF_HUB_OFFLINE"] = "1"
    argv = [sys.executable, str(ROOT / "scripts" / "bench_shapes.py"), "--quick", "--row", row]
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    rows = [line.split("|")[1:-1] for line in proc.stdout.splitlines() if line.startswith("| ")]
    sizes = rows[2:]
    assert len(sizes) >= 5, proc.stdout
    for cells in sizes:
        assert float(cells[1]) > 0 and float(cells[2]) > 0, proc.stdout
