"""scripts/bench_http.py runs end to end (`--quick`) and writes every figure; no timing is
asserted: the bench reports, the lead reads the full run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.slow
@pytest.mark.db
@pytest.mark.timeout(600)
def test_quick_http_bench_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench_http.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFEFE_")}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_http.py"), "--quick", "--json", str(out)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert "| http | `POST /api/v1/classify`, 16 clients, 1 text each |" in proc.stdout
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert set(rows) == {"classify_many", "http", "http_batch8"}
    for name, row in rows.items():
        assert is_number(row["posts_per_s"]) and row["posts_per_s"] > 0, name
        assert is_number(row["vs_classify_many"]), name
    assert rows["classify_many"]["vs_classify_many"] == 1.0
    for name in ("http", "http_batch8"):
        assert rows[name]["p50_ms"] <= rows[name]["p95_ms"], name
    assert rows["http"]["requests"] == 48 and rows["http_batch8"]["requests"] == 6
    assert report["target"]["met"] in (True, False)
    assert report["settings"]["quick"] is True and report["settings"]["clients"] == 16
    assert report["settings"]["database"] == (
        "DATABASE_URL server" if env.get("DATABASE_URL") else "embedded"
    )
