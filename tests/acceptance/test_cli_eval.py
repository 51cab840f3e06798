"""`python -m volfefe eval` on a small labelled CSV with the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run_eval(model: Path, csv_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VOLFEFE_MODEL": str(model), "VOLFEFE_WORKERS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "volfefe", "eval", str(csv_file), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_eval_reports_metrics_and_int8_agreement(tiny_model: Path, tmp_path: Path) -> None:
    labelled = tmp_path / "labelled.csv"
    labelled.write_text(
        "text,label\n"
        "stocks rally on the trade deal,positive\n"
        "tariffs crash markets,Negative\n"
        '"oil, flat today",neutral\n'
        ",neutral\n"
        "jobs report strong,positive\n",
        encoding="utf-8",
    )
    proc = run_eval(tiny_model, labelled, "--compare", "int8", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["n"] == 4  # the empty text is skipped
    assert 0.0 <= report["accuracy"] <= 1.0
    assert set(report["per_class"]) == {"positive", "negative", "neutral"}
    assert sum(sum(row.values()) for row in report["confusion"].values()) == 4
    assert report["per_class"]["positive"]["support"] == 2
    compare = report["compare"]
    assert compare["model_version"].endswith("int8")
    assert 0.0 <= compare["label_agreement"] <= 1.0 and compare["max_abs_dp"] >= 0.0
    human = run_eval(tiny_model, labelled)
    assert human.returncode == 0 and "confusion" in human.stdout


def test_eval_rejects_an_unknown_label(tiny_model: Path, tmp_path: Path) -> None:
    labelled = tmp_path / "bad.csv"
    labelled.write_text("text,label\nstocks,bullish\n", encoding="utf-8")
    proc = run_eval(tiny_model, labelled)
    assert proc.returncode == 2
    assert "line 2: label must be positive, negative or neutral" in proc.stderr


def test_compare_backends_and_export_int8(tiny_model: Path, tmp_path: Path) -> None:
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("text,label\nstocks rally,positive\ntariffs hit,negative\n", "utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VOLFEFE_MODEL": str(tiny_model)}
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "volfefe", "--workers", "1", "--backend", "torch"),
            *("eval", str(labelled), "--compare", "onnx", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    compare = json.loads(proc.stdout)["compare"]
    assert compare["model_version"].endswith("+onnx")
    assert compare["label_agreement"] == 1.0 and compare["max_abs_dp"] < 1e-3  # the parity check

    exported = subprocess.run(
        [sys.executable, "-m", "volfefe", "model", "export", "--quantize", "int8"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert exported.returncode == 0, exported.stderr
    folder = Path(exported.stdout.strip())
    meta = json.loads((folder / "volfefe-onnx.json").read_text())
    assert meta["model_version"].endswith("+onnx-int8")
