"""The OpenVINO backend: fp32 parity with torch, a lean child, static int8 with calibration and
the accuracy guard, and `auto` falling back when the guard refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.helpers import run_cli
from tests.integration.test_onnx import TEXTS
from volfefe import Classifier, Settings
from volfefe.child.calibration import MIN_TEXTS, default_texts
from volfefe.child.export import cache_folder, ensure_export, is_complete
from volfefe.store.connect import connect

pytest.importorskip("openvino")
pytest.importorskip("nncf")
from volfefe.child.backends.openvino_backend import has_bf16

ROOT = Path(__file__).resolve().parents[2]
LAX = {"VOLFEFE_GUARD_MIN_AGREEMENT": "0.5", "VOLFEFE_GUARD_MAX_DP": "1"}
STRICT = {"VOLFEFE_GUARD_MIN_AGREEMENT": "1", "VOLFEFE_GUARD_MAX_DP": "0"}


def volfefe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m volfefe ARGS` as a user runs it."""
    return run_cli(*args, env=env, timeout=600)


def test_openvino_matches_torch_on_short_and_truncated_texts(
    make_settings: Callable[..., Settings],
) -> None:
    with (
        Classifier(make_settings(backend="torch")) as ref,
        Classifier(make_settings(backend="openvino")) as ov,
    ):
        expected = ref.classify_many(TEXTS)
        got = ov.classify_many(TEXTS)
        alone = [ov.classify(text) for text in TEXTS]  # one-row passes, padded to 16 tokens
    for a, b in zip(alone, expected, strict=True):
        assert a.tokens == b.tokens and a.sentiment == b.sentiment
        assert max(abs(a.raw_scores[k] - b.raw_scores[k]) for k in a.raw_scores) <= 1e-4
    assert [r.truncated for r in got] == [r.truncated for r in expected]
    assert [r.tokens for r in got] == [r.tokens for r in expected]
    assert [r.sentiment for r in got] == [r.sentiment for r in expected]
    worst = max(
        abs(a.raw_scores[k] - b.raw_scores[k])
        for a, b in zip(got, expected, strict=True)
        for k in a.raw_scores
    )
    assert worst <= 1e-4  # fp32 weights and fp32 numerics, not OpenVINO's default bf16
    assert got[0].model_version == expected[0].model_version + "+openvino"


def test_the_openvino_child_imports_neither_torch_nor_the_exporters(
    tiny_model: Path, tmp_path: Path
) -> None:
    folder = ensure_export(tmp_path, str(tiny_model), None, "none", "openvino")
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            str(ROOT / "worker" / "classify.py"),
            "--serve",
            "--backend",
            "openvino",
            "--export-dir",
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
    assert replies[0]["model_version"].endswith("+openvino")
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "openvino" in imported
    top = {m.split(".")[0] for m in imported}
    assert not top & {"torch", "transformers", "nncf", "onnxruntime", "onnx", "sklearn"}


def test_int8_static_export_is_calibrated_checked_and_recorded(
    tiny_model: Path, tmp_path: Path
) -> None:
    calib = tmp_path / "mine.jsonl"
    calib.write_text("".join(json.dumps({"text": t}) + "\n" for t in default_texts()))
    env = {"VOLFEFE_EXPORT_CACHE": str(tmp_path / "cache"), "VOLFEFE_GUARD_SIZE": "30", **LAX}
    proc = volfefe(
        {**env, "VOLFEFE_MODEL": str(tiny_model)},
        "model",
        "export",
        "--quantize",
        "int8-static",
        "--calibrate",
        str(calib),
    )
    assert proc.returncode == 0, proc.stderr
    folder = Path(proc.stdout.strip())
    assert is_complete(folder, "openvino")
    meta = json.loads((folder / "volfefe-openvino.json").read_text())
    assert meta["model_version"].endswith("+openvino-int8-static")
    assert meta["calibration"]["source"] == "file mine.jsonl"
    assert meta["guard"]["n"] == 30
    assert meta["calibration"]["texts"] + meta["guard"]["n"] <= len(set(default_texts()))
    assert meta["guard"]["label_agreement"] >= 0.5
    assert 0 < meta["guard"]["max_abs_dp"] <= 1  # int8 changes the numbers a little
    # Stricter thresholds later: the cached export is refused from its record, not deleted.
    strict = volfefe(
        {**env, **STRICT, "VOLFEFE_MODEL": str(tiny_model)},
        "model",
        "export",
        "--quantize",
        "int8-static",
    )
    assert strict.returncode == 5 and "AccuracyGuardFailed" in strict.stderr
    assert is_complete(folder, "openvino")


def test_too_few_calibration_texts_are_a_usage_error_before_any_export(
    tiny_model: Path, tmp_path: Path
) -> None:
    calib = tmp_path / "two.jsonl"
    calib.write_text('{"text": "stocks rally"}\n{"text": "oil slumps"}\n\n')
    cache = tmp_path / "cache"
    env = {"VOLFEFE_MODEL": str(tiny_model), "VOLFEFE_EXPORT_CACHE": str(cache)}
    proc = volfefe(
        env, "--backend", "openvino", "model", "export", "--quantize", "int8-static",
        "--calibrate", str(calib),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    message = proc.stderr.splitlines()[-1]
    assert message.startswith(f"UsageError: {calib} holds 2 distinct texts: too few")
    assert f"at least {MIN_TEXTS}" in message
    assert "WorkerBootError" not in proc.stderr and proc.stdout == ""
    assert not cache.exists()  # refused before any export started


def test_the_guard_refuses_to_install_a_model_worse_than_its_thresholds(
    tiny_model: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    env = {"VOLFEFE_MODEL": str(tiny_model), "VOLFEFE_EXPORT_CACHE": str(cache), **STRICT}
    runs = [volfefe(env, "model", "export", "--quantize", "int8-static") for _ in range(2)]
    for proc in runs:
        assert proc.returncode == 5, proc.stderr
        assert proc.stderr.startswith("AccuracyGuardFailed: the int8-static export was refused")
        assert "held-out posts" in proc.stderr and proc.stdout == ""
    assert not cache_folder(cache, str(tiny_model), None, "int8-static", "openvino").exists()
    refused = [p.name for p in cache.iterdir() if p.name.endswith(".refused.json")]
    assert len(refused) == 1  # the second run answered from this record
    assert not [p for p in cache.iterdir() if p.is_dir() and p.name.startswith(".openvino-")]


needs_bf16 = pytest.mark.skipif(not has_bf16(), reason="this CPU has no bf16 arithmetic")


@needs_bf16
def test_bf16_export_is_checked_recorded_and_served_at_bf16(
    tiny_model: Path, tmp_path: Path
) -> None:
    env = {
        "VOLFEFE_MODEL": str(tiny_model),
        "VOLFEFE_EXPORT_CACHE": str(tmp_path / "cache"),
        "VOLFEFE_GUARD_SIZE": "30",
        **LAX,
    }
    proc = volfefe(env, "model", "export", "--quantize", "bf16")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((Path(proc.stdout.strip()) / "volfefe-openvino.json").read_text())
    assert meta["model_version"].endswith("+openvino-bf16")
    assert meta["precision"] == "bf16"
    assert meta["guard"]["n"] == 30 and meta["calibration"]["texts"] == 0
    assert 0 < meta["guard"]["max_abs_dp"] <= 1  # bf16 arithmetic moves the numbers a little
    served = volfefe({**env, "VOLFEFE_QUANTIZE": "bf16"}, "predict", "stocks rally")
    assert served.returncode == 0, served.stderr
    result = json.loads(served.stdout)
    assert result["model_version"] == meta["model_version"]
    refused = volfefe({**env, **STRICT}, "model", "export", "--quantize", "bf16")
    assert refused.returncode == 5
    assert refused.stderr.startswith("AccuracyGuardFailed: the bf16 export was refused")


@pytest.mark.parametrize(
    "scheme, runs",
    [
        ("int8-static", "+onnx-int8"),
        pytest.param("bf16", "+openvino", marks=needs_bf16),
        # refused too, the int8-static it tries next: on to dynamic int8
        pytest.param("int8-static-bf16", "+onnx-int8", marks=needs_bf16),
    ],
)
def test_auto_falls_back_when_the_guard_refuses(
    make_settings: Callable[..., Settings], scheme: str, runs: str
) -> None:
    settings = make_settings(
        backend="auto", quantize=scheme, guard_min_agreement=1.0, guard_max_dp=0.0
    )
    with Classifier(settings) as clf:
        result = clf.classify("stocks rally")
    assert result.model_version.endswith(runs)


def test_calibrate_from_db_samples_the_stored_posts(
    tiny_model: Path, tmp_path: Path, database_url: str
) -> None:
    env = {
        "VOLFEFE_MODEL": str(tiny_model),
        "VOLFEFE_EXPORT_CACHE": str(tmp_path / "cache"),
        "DATABASE_URL": database_url,
        "VOLFEFE_GUARD_SIZE": "20",
        **LAX,
    }
    assert volfefe(env, "import", str(ROOT / "data" / "sample_posts.jsonl")).returncode == 0
    proc = volfefe(env, "model", "export", "--quantize", "int8-static", "--calibrate-from-db", "40")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((Path(proc.stdout.strip()) / "volfefe-openvino.json").read_text())
    assert meta["calibration"] == {"source": "database (60 posts)", "texts": 40, "seed": 0}
    assert meta["guard"]["n"] == 20
    with connect(database_url) as conn:
        conn.execute("DELETE FROM contents")
    empty = volfefe(
        env, "model", "export", "--quantize", "int8-static", "--calibrate-from-db", "40"
    )
    assert empty.returncode == 2 and "too few to calibrate on" in empty.stderr


@pytest.mark.parametrize("scheme", ["int8-static", pytest.param("bf16", marks=needs_bf16)])
def test_eval_compare_reports_the_guard_figures(
    tiny_model: Path, tmp_path: Path, scheme: str
) -> None:
    labelled = tmp_path / "labelled.csv"
    labelled.write_text(
        "text,label\nstocks rally on the deal,positive\ntariffs crash markets,negative\n"
        "oil flat today,neutral\n",
        encoding="utf-8",
    )
    env = {
        "VOLFEFE_MODEL": str(tiny_model),
        "VOLFEFE_EXPORT_CACHE": str(tmp_path / "cache"),
        "VOLFEFE_BACKEND": "openvino",
        "VOLFEFE_WORKERS": "1",
        **LAX,
    }
    proc = volfefe(env, "eval", str(labelled), "--compare", scheme, "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["model_version"].endswith("+openvino")
    compare = report["compare"]
    assert compare["model_version"] == report["model_version"] + f"-{scheme}"
    assert 0 <= compare["label_agreement"] <= 1 and 0 <= compare["max_abs_dp"] <= 1


def test_openvino_children_leave_their_threads_free_to_run_on_any_core(
    make_settings: Callable[..., Settings],
) -> None:
    # OpenVINO pins its threads by default, every process to the same first cores: two
    # children of one thread each would share one core. Here no thread of either child is
    # tied to fewer cores than this process may use.
    allowed = os.sched_getaffinity(0)
    with Classifier(make_settings(backend="openvino", workers=2, threads=1)) as clf:
        clf.classify_many(TEXTS)
        pids = clf.pids()
        assert len(pids) == 2
        affinities = {
            (pid, int(tid)): os.sched_getaffinity(int(tid))
            for pid in pids
            for tid in os.listdir(f"/proc/{pid}/task")
        }
    assert all(cores == allowed for cores in affinities.values()), affinities
