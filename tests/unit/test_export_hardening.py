"""Model identity hashes whole files (digest cached by size and mtime); the export cache is
opened without following symlinks; calibration samples are stratified and disjoint from the
guard's held-out texts; the guard's figures."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from volfefe.child.calibration import default_texts, split_holdout, stratified_sample
from volfefe.child.digest import file_digest
from volfefe.child.engine import ModelLoadError, model_version_of
from volfefe.child.export import _locked, ensure_export
from volfefe.child.guard import compare

ROOT = Path(__file__).resolve().parents[2]


def fake_model(folder: Path, weights: bytes) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text('{"id2label": {"0": "neutral"}}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_model_version_changes_when_a_byte_in_the_middle_of_the_weights_changes(
    tmp_path: Path,
) -> None:
    weights = bytearray(os.urandom(5 << 20))  # larger than the 2 MiB the old hash read
    model = fake_model(tmp_path / "m", bytes(weights))
    before = model_version_of(str(model), None, None)
    weights[len(weights) // 2] ^= 0xFF  # same size, same first and last MiB
    (model / "model.safetensors").write_bytes(bytes(weights))
    assert model_version_of(str(model), None, None) != before


def test_the_digest_is_cached_by_size_and_mtime(tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"a" * 1000)
    cache = tmp_path / "digests"
    assert file_digest(weights, cache) == hashlib.sha256(b"a" * 1000).hexdigest()
    (record,) = cache.iterdir()
    stamp = weights.stat()
    # Same size and mtime: the cached value is trusted (this is what keeps start-up fast) ...
    with weights.open("r+b") as fh:
        fh.write(b"b")
    os.utime(weights, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert file_digest(weights, cache) == hashlib.sha256(b"a" * 1000).hexdigest()
    # ... and any change of mtime makes it hash the file again.
    os.utime(weights, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000))
    assert file_digest(weights, cache) == hashlib.sha256(b"b" + b"a" * 999).hexdigest()
    assert record.stat().st_mode & 0o077 == 0


def test_a_symlinked_digest_record_is_not_followed(tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights")
    cache = tmp_path / "digests"
    file_digest(weights, cache)
    (record,) = cache.iterdir()
    target = tmp_path / "elsewhere.json"
    target.write_text(record.read_text().replace(hashlib.sha256(b"weights").hexdigest(), "f" * 64))
    record.unlink()
    record.symlink_to(target)
    assert file_digest(weights, cache) == hashlib.sha256(b"weights").hexdigest()
    assert not record.is_symlink()  # replaced by a real file, the link's target untouched
    assert "f" * 64 in target.read_text()


def test_the_export_lock_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    lock = tmp_path / ".lock"
    lock.symlink_to(victim)
    with pytest.raises(ModelLoadError, match="cannot open the export lock"), _locked(lock):
        pass
    assert victim.read_text() == "precious"


def test_a_cache_root_writable_by_everyone_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    root.chmod(0o777)
    model = fake_model(tmp_path / "m", b"weights")
    with pytest.raises(ModelLoadError, match="writable by every user"):
        ensure_export(root, str(model), None, "none")
    assert list(root.iterdir()) == []


def test_the_sample_is_spread_over_lengths_and_seeded() -> None:
    texts = ["x" * n for n in range(1, 1001)]
    picked = stratified_sample(texts, 10, seed=3)
    assert [len(t) // 100 for t in picked] == list(range(10))  # one in each tenth
    assert picked == stratified_sample(texts, 10, seed=3)
    assert picked != stratified_sample(texts, 10, seed=4)
    assert stratified_sample(["a", "a", " ", "bb"], 10) == ["a", "bb"]  # distinct, non-blank


def test_held_out_texts_are_never_calibration_texts() -> None:
    texts = default_texts()
    calib, held = split_holdout(texts, 50)
    assert len(held) == 50 and not set(calib) & set(held)
    assert set(calib) | set(held) == set(texts)
    assert max(map(len, held)) > 3 * min(map(len, held))  # short and long posts both checked
    with pytest.raises(ValueError, match="cannot give 3 held-out"):
        split_holdout(["a", "b", "c"], 3)


def test_the_shipped_sample_is_the_repository_sample() -> None:
    shipped = ROOT / "volfefe" / "child" / "data" / "sample_posts.jsonl"
    assert shipped.read_bytes() == (ROOT / "data" / "sample_posts.jsonl").read_bytes()
    assert len(default_texts()) > 150


def test_guard_figures() -> None:
    figures = compare([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1]], [[0.8, 0.1, 0.1], [0.5, 0.4, 0.1]])
    assert figures.n == 2 and figures.label_agreement == 0.5
    assert figures.max_abs_dp == pytest.approx(0.3)
    assert figures.passes(min_agreement=0.5, max_dp=0.3)
    assert not figures.passes(min_agreement=0.6, max_dp=0.3)
    assert not figures.passes(min_agreement=0.5, max_dp=0.29)
