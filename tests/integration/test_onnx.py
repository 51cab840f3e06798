"""The ONNX Runtime backend: export and cache, parity with torch, and a torch-free child."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from volfefe import Classifier, Settings
from volfefe.child.export import cache_folder, ensure_export, is_complete

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "stocks rally",
    "tariffs crash the market",
    "oil",
    "jobs report strong " * 3,
    "fed " * 700,
    "bonds " + "yield " * 2000,
    "🚀 $TSLA",
    "Die Börse bricht ein",
]


def test_onnx_matches_torch_on_short_and_truncated_texts(
    make_settings: Callable[..., Settings],
) -> None:
    with (
        Classifier(make_settings(backend="torch")) as ref,
        Classifier(make_settings(backend="onnx")) as onnx,
    ):
        expected = ref.classify_many(TEXTS)
        got = onnx.classify_many(TEXTS)
    assert [r.truncated for r in got] == [r.truncated for r in expected]
    assert any(r.truncated for r in got)
    assert [r.tokens for r in got] == [r.tokens for r in expected]
    assert [r.sentiment for r in got] == [r.sentiment for r in expected]
    worst = max(
        abs(a.raw_scores[k] - b.raw_scores[k])
        for a, b in zip(got, expected, strict=True)
        for k in a.raw_scores
    )
    assert worst <= 1e-4
    assert got[0].model_version == expected[0].model_version + "+onnx"


def test_export_is_cached_and_reused(tiny_model: Path, tmp_path: Path) -> None:
    folder = ensure_export(tmp_path, str(tiny_model), None, "none")
    assert folder == cache_folder(tmp_path, str(tiny_model), None, "none")
    assert is_complete(folder)
    before = (folder / "model.onnx").stat().st_mtime_ns
    assert ensure_export(tmp_path, str(tiny_model), None, "none") == folder
    assert (folder / "model.onnx").stat().st_mtime_ns == before  # not exported again
    # nothing left behind but the lock and the digest cache: no temporary folder
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [folder.name]
    assert not [
        p for p in tmp_path.iterdir() if p.name.startswith(f".{folder.name}.") and p.is_dir()
    ]


def test_a_corrupt_export_is_detected_and_rebuilt(tiny_model: Path, tmp_path: Path) -> None:
    folder = ensure_export(tmp_path, str(tiny_model), None, "none")
    model_file = folder / "model.onnx"
    model_file.write_bytes(model_file.read_bytes()[:1000])  # a half-written or damaged file
    assert not is_complete(folder)
    assert ensure_export(tmp_path, str(tiny_model), None, "none") == folder
    assert is_complete(folder)


def test_int8_export_is_its_own_cache_entry(tiny_model: Path, tmp_path: Path) -> None:
    fp32 = ensure_export(tmp_path, str(tiny_model), None, "none")
    int8 = ensure_export(tmp_path, str(tiny_model), None, "int8")
    assert fp32 != int8 and is_complete(int8)
    meta = orjson.loads((int8 / "volfefe-onnx.json").read_bytes())
    assert meta["model_version"].endswith("+onnx-int8")
    assert meta["fused"].get("Attention", 0) > 0  # the BERT fusion ran before quantisation


def test_the_onnx_child_never_imports_torch(tiny_model: Path, tmp_path: Path) -> None:
    folder = ensure_export(tmp_path, str(tiny_model), None, "none")
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            str(ROOT / "worker" / "classify.py"),
            "--serve",
            "--backend",
            "onnx",
            "--onnx-dir",
            str(folder),
            "--threads",
            "1",
        ],
        input=b'{"id": 1, "texts": ["stocks rally"]}\n',
        capture_output=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    replies = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert [r["type"] for r in replies] == ["ready", "result"]
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "onnxruntime" in imported
    assert not {m for m in imported if m == "torch" or m.startswith("torch.")}
    assert "transformers" not in imported


def test_model_export_command_exports_once(tiny_model: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VOLFEFE_MODEL": str(tiny_model),
        "VOLFEFE_EXPORT_CACHE": str(tmp_path),
        "VOLFEFE_BACKEND": "onnx",  # auto would pick openvino where it is installed
    }
    runs = [
        subprocess.run(
            [sys.executable, "-m", "volfefe", "model", "export"],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert is_complete(Path(runs[0].stdout.strip()))
    missing = subprocess.run(
        [sys.executable, "-m", "volfefe", "--model", str(tmp_path / "nope"), "model", "export"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert missing.returncode == 1 and "does not exist" in missing.stderr
