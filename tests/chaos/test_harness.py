"""`python -m volfefe chaos` as CI runs it: a short seed on the tiny model, a real process.

The first test injects every fault but close-under-load and partition-worker (which has its
own test, tests/chaos/test_partition.py), with a restart budget they cannot spend; the second
injects every kind with the default budget (a spent budget breaks a pool, which its owner
rebuilds, or a job worker exits and is started again), a 10 s partition among them where the
machine can make network namespaces.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from volfefe.chaos.schedule import FAULT_KINDS

WITHOUT_CLOSE = tuple(k for k in FAULT_KINDS if k not in ("close-under-load", "partition-worker"))
POSTS, POISON = 40, 2
RUN_TIMEOUT = 280.0  # seconds; a run takes 30-60 s on a loaded 2-core machine


def run_chaos(
    tiny_model: Path,
    tmp_path: Path,
    faults: tuple[str, ...],
    minutes: str = "0.4",
    **extra_env: str,
) -> dict[str, Any]:
    """Run the command; return its JSON report with its exit status and table added."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VOLFEFE_MODEL": str(tiny_model),
        "VOLFEFE_BACKEND": "auto",  # onnx when installed: children boot in about a second
        "VOLFEFE_WORKERS": "1",
        "VOLFEFE_THREADS": "1",
        "VOLFEFE_CALL_TIMEOUT": "5",
        "VOLFEFE_BOOT_TIMEOUT": "20",
        "VOLFEFE_SHUTDOWN_GRACE": "3",
        **extra_env,
    }
    report = tmp_path / "chaos.json"
    argv = [
        *(sys.executable, "-m", "volfefe", "chaos", "--seed", "1"),
        *("--posts", str(POSTS), "--poison", str(POISON), "--minutes", minutes),
        *("--interval", "3", "--pause-seconds", "3", "--child-delay", "0.05"),
        *("--partition-seconds", "10"),
        *("--faults", ",".join(faults), "--json", str(report)),
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert report.exists(), done.stderr[-5000:]
    data: dict[str, Any] = json.loads(report.read_text())
    data["exit"], data["table"], data["stderr"] = done.returncode, done.stdout, done.stderr
    return data


def assert_clean(report: dict[str, Any], faults: tuple[str, ...]) -> None:
    """Exit 0, no violation, every fault kind scheduled, every innocent post classified."""
    assert report["violations"] == [], report["table"]
    assert report["exit"] == 0 and report["ok"], report["stderr"][-5000:]
    assert "violations: 0" in report["table"]
    assert set(report["faults"]) == set(faults)
    for kind, counts in report["faults"].items():
        assert counts["injected"] + counts["no_target"] == counts["scheduled"] >= 1, kind
        assert kind in report["table"]
    assert report["outcomes"]["innocent posts classified once"] == POSTS - POISON
    assert report["outcomes"]["fresh post classified by the workers (s)"] is not None


@pytest.mark.slow
def test_a_short_seed_survives_every_fault_but_close_with_an_unspendable_budget(
    tiny_model: Path, tmp_path: Path
) -> None:
    # A budget the faults cannot spend: no pool breaks; the full test below lets them.
    report = run_chaos(tiny_model, tmp_path, WITHOUT_CLOSE, VOLFEFE_MAX_RESTARTS="1000")
    assert_clean(report, WITHOUT_CLOSE)
    injected = sum(c["injected"] for c in report["faults"].values())
    assert injected >= len(WITHOUT_CLOSE) - 1  # a garbage fault may find no ready child


@pytest.mark.slow
def test_a_short_seed_survives_every_fault(tiny_model: Path, tmp_path: Path) -> None:
    # 27 s: one fault of each of the nine kinds, every 3 s
    assert_clean(run_chaos(tiny_model, tmp_path, FAULT_KINDS, minutes="0.45"), FAULT_KINDS)


def test_an_unknown_fault_kind_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "volfefe", "chaos", "--faults", "kill-child,kill-everything"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown fault kind kill-everything" in done.stderr
