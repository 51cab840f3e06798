"""The model a suite benchmarks: a given folder, the tiny test model (`--quick`, built into
the run's work folder), or the FinBERT-sized random model of make_finbert_like_model.py
(finbert-tone's architecture and vocabulary size, so the compute is the real model's), built
once into the benches' cache under the system temp dir and reused by every suite."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .logs import log
from .process import SAMPLE_POSTS, SCRIPTS, run

DEFAULT_SEED = 1234  # make_finbert_like_model.py's default too
BUILD_TIMEOUT = 900.0  # seconds


def cache_root() -> Path:
    """The benches' own cache (models, exports), reused across runs."""
    return Path(tempfile.gettempdir()) / "volfefe-bench-cache"


def model_cache_dir(seed: int) -> Path:
    """Where the FinBERT-sized model is cached: keyed by the builder, the sample posts and seed."""
    digest = hashlib.sha256()
    for source in (SCRIPTS / "make_finbert_like_model.py", SAMPLE_POSTS):
        digest.update(source.read_bytes())
    return cache_root() / f"finbert-like-{digest.hexdigest()[:10]}-seed{seed}"


def build_model(script: str, out: Path, args: Sequence[str] = ()) -> None:
    """Run a model builder script of scripts/ into `out`."""
    run(
        [sys.executable, str(SCRIPTS / script), str(out), *args],
        env=os.environ,
        timeout=BUILD_TIMEOUT,
    )


def ensure_model(
    model: Path | None, quick: bool, workdir: Path, seed: int = DEFAULT_SEED
) -> tuple[Path, str]:
    """The model folder to benchmark and what kind it is (custom, tiny, finbert-like)."""
    if model is not None:
        if not (model / "config.json").is_file():
            raise SystemExit(f"bench: {model} is not a model folder (no config.json)")
        return model.resolve(), "custom"
    if quick:
        out = workdir / "tiny-model"
        log("building the tiny model")
        build_model("make_tiny_model.py", out)
        return out, "tiny"
    cached = model_cache_dir(seed)
    if (cached / ".complete").is_file():
        log(f"reusing the FinBERT-sized model in {cached}")
        return cached, "finbert-like"
    log(f"building the FinBERT-sized model into {cached} (once)")
    cached.parent.mkdir(parents=True, exist_ok=True)
    building = cached.with_name(f"{cached.name}.building-{os.getpid()}")
    build_model("make_finbert_like_model.py", building, ["--seed", str(seed)])
    (building / ".complete").write_text("ok\n")
    try:
        building.rename(cached)
    except OSError:  # another bench finished the same build first
        shutil.rmtree(building, ignore_errors=True)
    return cached, "finbert-like"
