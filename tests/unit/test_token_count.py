"""The orchestrator's token counts: the model's own tokenizer when its file is there."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from volfefe.supervisor.batching import estimate_tokens
from volfefe.supervisor.token_count import TokenCounter

DENSE = "$AAPL +3.2% https://t.co/xyz"  # 28 characters, 28 tokens for the tiny model


def test_a_local_model_folder_is_counted_with_its_tokenizer(tiny_model: Path) -> None:
    counter = TokenCounter.for_children(["--backend", "torch"], str(tiny_model))
    assert counter.exact
    assert counter.count(DENSE) == 28 != estimate_tokens(DENSE)
    assert counter.count_all(["stocks 2", "x " * 5000]) == [4, 512]  # capped like the child


def test_an_export_folder_wins_over_the_model_folder(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_bytes((tiny_model / "tokenizer.json").read_bytes())
    counter = TokenCounter.for_children(["--export-dir", str(tmp_path)], "org/hub-model")
    assert counter.exact and counter.count(DENSE) == 28


def test_without_a_tokenizer_file_tokens_are_estimated(tmp_path: Path) -> None:
    counter = TokenCounter.for_children(["--export-dir", str(tmp_path)], "org/hub-model")
    assert not counter.exact
    assert counter.count(DENSE) == estimate_tokens(DENSE)


def test_an_unreadable_tokenizer_file_falls_back_to_the_estimate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "tokenizer.json").write_text("{not a tokenizer")
    with caplog.at_level(logging.WARNING):
        counter = TokenCounter.for_children(["--export-dir", str(tmp_path)], "m")
    assert not counter.exact
    assert "estimating tokens from characters" in caplog.text
