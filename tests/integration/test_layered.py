"""The layered ONNX export: stage graphs run in order give the one-graph export's scores."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from volfefe import Classifier, Settings
from volfefe.child.backends import layered_backend, onnx_backend
from volfefe.child.engine import Engine
from volfefe.child.export import cache_folder, ensure_export, is_complete
from volfefe.child.export_layered import META_FILE, stage_files
from volfefe.child.guard import DEFAULT_MAX_DP, DEFAULT_MIN_AGREEMENT, compare
from volfefe.protocol import ItemResult

TEXTS = [
    "stocks rally",
    "tariffs crash the market",
    "oil",
    "jobs report strong " * 3,
    "fed " * 700,  # truncated to the model's 512 tokens
    "🚀 $TSLA",
    "the fed cuts rates and markets soar to record highs",
]
OPTIONS = {"threads": 1, "max_chars": 10_000, "forward_tokens": 4096}


def _engines(model: Path, root: Path, quantize: str) -> tuple[Engine, Engine]:
    """The one-graph engine and a layered one whose every pass runs the stages (a pause
    point that does nothing is still a pause point: the one-graph model is never used)."""
    one = ensure_export(root, str(model), None, quantize)
    folder = ensure_export(root, str(model), None, quantize, "onnx-layered")
    layered, staged = layered_backend.load_engine(folder, **OPTIONS, short_tokens=0)
    staged.between = lambda: None
    return onnx_backend.load_engine(one, **OPTIONS), layered


def _batch(engine: Engine) -> tuple[np.ndarray, np.ndarray]:
    """TEXTS as one padded batch, truncated like the engine truncates."""
    rows = [e.ids[: engine.max_length] for e in engine.tokenizer.encode_batch(TEXTS)]
    longest = max(len(r) for r in rows)
    ids = np.full((len(rows), longest), engine.pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def _scores(engine: Engine) -> list[list[float]]:
    return _scores_of(engine, TEXTS)


def _scores_of(engine: Engine, texts: list[str]) -> list[list[float]]:
    results = engine.classify(texts)
    assert all(isinstance(r, ItemResult) for r in results)
    return [list(r.raw_scores.values()) for r in results if isinstance(r, ItemResult)]


def test_fp32_stages_give_the_one_graph_logits(tiny_model: Path, tmp_path: Path) -> None:
    one, layered = _engines(tiny_model, tmp_path, "none")
    ids, mask = _batch(one)
    expected = one.predict(ids, mask)
    got = layered.predict(ids, mask)
    assert got.shape == expected.shape == (len(TEXTS), 3)
    assert float(np.abs(got - expected).max()) <= 1e-5
    assert float(np.abs(np.array(_scores(layered)) - np.array(_scores(one))).max()) <= 1e-5
    assert layered.ready.model_version == one.ready.model_version


def test_int8_stages_stay_within_the_accuracy_guard(tiny_model: Path, tmp_path: Path) -> None:
    one, layered = _engines(tiny_model, tmp_path, "int8")
    figures = compare(_scores(one), _scores(layered))
    assert figures.passes(min_agreement=DEFAULT_MIN_AGREEMENT, max_dp=DEFAULT_MAX_DP)
    assert layered.ready.model_version.endswith("+onnx-int8")


def test_the_pause_point_comes_between_every_two_stages(tiny_model: Path, tmp_path: Path) -> None:
    folder = ensure_export(tmp_path, str(tiny_model), None, "none", "onnx-layered")
    engine, staged = layered_backend.load_engine(folder, **OPTIONS, short_tokens=0)
    pauses: list[int] = []
    staged.between = lambda: pauses.append(1)
    engine.classify(["stocks rally"])
    assert staged.stages == len(stage_files(2))  # the tiny model has 2 layers
    assert len(pauses) == staged.stages - 1


def test_a_short_pass_or_one_nobody_pauses_runs_the_one_graph_model(
    tiny_model: Path, tmp_path: Path
) -> None:
    folder = ensure_export(tmp_path, str(tiny_model), None, "none", "onnx-layered")
    engine, staged = layered_backend.load_engine(folder, **OPTIONS, short_tokens=8)
    pauses: list[str] = []
    staged.between = lambda: pauses.append("paused")
    short = _scores_of(engine, ["stocks rally"])  # 4 tokens: never paused
    assert pauses == []
    engine.classify(["fed " * 20])  # 22 tokens: paused between every two stages
    assert len(pauses) == staged.stages - 1
    pauses.clear()
    staged.between = layered_backend.no_pause
    engine.classify(["fed " * 20])
    assert pauses == []
    one = onnx_backend.load_engine(
        ensure_export(tmp_path, str(tiny_model), None, "none"), **OPTIONS
    )
    assert short == _scores_of(one, ["stocks rally"])  # the same graph: the same scores


def test_a_pass_run_at_the_pause_point_leaves_the_paused_one_intact(
    tiny_model: Path, tmp_path: Path
) -> None:
    folder = ensure_export(tmp_path, str(tiny_model), None, "none", "onnx-layered")
    engine, staged = layered_backend.load_engine(folder, **OPTIONS, short_tokens=0)
    staged.between = lambda: None  # the stages, like the paused pass below
    alone = _scores(engine)
    nested: list[list[float]] = []

    def run_another() -> None:
        staged.between = lambda: None
        nested.extend(_scores(engine))

    staged.between = run_another
    assert _scores(engine) == alone
    assert nested == alone


def test_the_layered_export_is_cached_and_checked(tiny_model: Path, tmp_path: Path) -> None:
    folder = ensure_export(tmp_path, str(tiny_model), None, "none", "onnx-layered")
    assert folder == cache_folder(tmp_path, str(tiny_model), None, "none", "onnx-layered")
    assert folder != cache_folder(tmp_path, str(tiny_model), None, "none")
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    assert meta["stages"] == stage_files(2)
    assert meta["whole"] == onnx_backend.MODEL_FILE  # the one-graph model beside the stages
    assert sorted(meta["fingerprints"]) == sorted([*stage_files(2), onnx_backend.MODEL_FILE])
    assert is_complete(folder, "onnx-layered")
    before = (folder / "layer-01.onnx").stat().st_mtime_ns
    assert ensure_export(tmp_path, str(tiny_model), None, "none", "onnx-layered") == folder
    assert (folder / "layer-01.onnx").stat().st_mtime_ns == before  # reused, not redone
    with (folder / "layer-01.onnx").open("ab") as fh:
        fh.write(b"\0")
    assert not is_complete(folder, "onnx-layered")
    assert ensure_export(tmp_path, str(tiny_model), None, "none", "onnx-layered") == folder
    assert is_complete(folder, "onnx-layered")


@pytest.mark.parametrize("stages", [["../model.onnx"], [".hidden.onnx"], []])
def test_a_record_naming_odd_stage_files_is_not_complete(
    tiny_model: Path, tmp_path: Path, stages: list[str]
) -> None:
    folder = ensure_export(tmp_path, str(tiny_model), None, "none", "onnx-layered")
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    (folder / META_FILE).write_text(json.dumps({**meta, "stages": stages}), encoding="utf-8")
    assert not is_complete(folder, "onnx-layered")


def test_a_classifier_that_preempts_gives_the_same_answers(
    make_settings: Callable[..., Settings],
) -> None:
    with (
        Classifier(make_settings(backend="onnx")) as plain,
        Classifier(make_settings(backend="auto", preempt="layers")) as layered,
    ):
        expected = plain.classify_many(TEXTS)
        got = layered.classify_many(TEXTS)
        cache = layered.settings.export_cache
        argv = Path(f"/proc/{layered.pids()[0]}/cmdline").read_bytes().split(b"\0")
    assert argv[argv.index(b"--preempt") + 1] == b"layers"
    assert [r.sentiment for r in got] == [r.sentiment for r in expected]
    assert [(r.tokens, r.truncated) for r in got] == [(r.tokens, r.truncated) for r in expected]
    worst = max(
        abs(a.raw_scores[k] - b.raw_scores[k])
        for a, b in zip(got, expected, strict=True)
        for k in a.raw_scores
    )
    assert worst <= 1e-5
    assert got[0].model_version == expected[0].model_version
    assert any(p.name.startswith("onnx-layered-") for p in cache.iterdir())
