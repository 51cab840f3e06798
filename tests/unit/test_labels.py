"""Label mapping and model versions used by the child (pure functions, no model loaded)."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def worker() -> ModuleType:
    """The pure helpers the child uses (volfefe.child.engine imports no torch)."""
    return importlib.import_module("volfefe.child.engine")


@pytest.mark.parametrize(
    "id2label, expected",
    [
        ({0: "Neutral", 1: "Positive", 2: "Negative"}, ["neutral", "positive", "negative"]),
        ({0: "positive", 1: "negative", 2: "neutral"}, ["positive", "negative", "neutral"]),
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, ["neutral", "positive", "negative"]),
    ],
)
def test_labels_map(worker: ModuleType, id2label: dict[int, str], expected: list[str]) -> None:
    assert worker.resolve_labels(id2label) == expected


@pytest.mark.parametrize(
    "id2label",
    [
        {0: "bullish", 1: "bearish", 2: "neutral"},
        {0: "LABEL_0", 1: "LABEL_1"},
        {0: "positive", 1: "negative", 2: "neutral", 3: "mixed"},
    ],
)
def test_unmappable_labels_are_refused(worker: ModuleType, id2label: dict[int, str]) -> None:
    with pytest.raises(worker.ModelLoadError, match="cannot map the model's labels"):
        worker.resolve_labels(id2label)


def test_model_version_of_hub_id_names_the_commit(worker: ModuleType) -> None:
    assert (
        worker.model_version_of("org/model", None, "0123456789abcdef") == "org/model@0123456789ab"
    )
    assert worker.model_version_of("org/model", "v2", None) == "org/model@v2"


def test_model_version_of_folder_changes_with_its_content(
    worker: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "model.safetensors").write_bytes(b"weights-1")
    first = worker.model_version_of(str(tmp_path), None, None)
    (tmp_path / "model.safetensors").write_bytes(b"weights-2")
    assert worker.model_version_of(str(tmp_path), None, None) != first
    assert first.startswith(tmp_path.name + "@")
