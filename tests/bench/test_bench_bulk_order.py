"""scripts/bench_bulk_order.py --quick runs and prints both orders for every budget.

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
def test_quick_bulk_order_bench_prints_both_orders_for_each_budget() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFEFE_")}
    argv = [sys.executable, str(ROOT / "scripts" / "bench_bulk_order.py"), "--quick"]
    argv += ["--budgets", "2048,512"]
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    rows = [line.split("|")[1:-1] for line in proc.stdout.splitlines() if line.startswith("| ")]
    budgets = [cells[0].strip() for cells in rows[2:]]
    assert budgets == ["2048", "512"], proc.stdout
    for cells in rows[2:]:
        assert all(float(cell) > 0 for cell in cells[1:]), proc.stdout
