"""A child's model_version hashes the whole weights file, with the digest cached in the
export cache so the next start does not read the weights again."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from volfefe import Classifier, Settings


def test_model_version_follows_every_byte_of_the_weights(
    make_settings: Callable[..., Settings], tiny_model: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    cache = tmp_path / "cache"
    settings = make_settings(model=str(model), export_cache=cache, backend="torch")
    with Classifier(settings) as clf:
        before = clf.classify("stocks rally").model_version
    (record,) = (cache / ".digests").iterdir()
    assert json.loads(record.read_text())["path"] == str((model / "model.safetensors").resolve())
    weights = bytearray((model / "model.safetensors").read_bytes())
    middle = len(weights) // 2  # a float of some weight in the middle of the file
    weights[middle] ^= 0x01
    (model / "model.safetensors").write_bytes(bytes(weights))
    with Classifier(settings) as clf:
        after = clf.classify("stocks rally").model_version
    assert after != before and after.split("@")[0] == before.split("@")[0]
