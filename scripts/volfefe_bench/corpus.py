"""What the bench classifies: the model folder (built or found in the cache) and the posts."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .common import SAMPLE_POSTS, SCRIPTS, log, run


def bench_cache_root() -> Path:
    """The bench's own cache (models, exports), reused across runs."""
    return Path(tempfile.gettempdir()) / "volfefe-bench-cache"


def model_cache_dir(seed: int) -> Path:
    """Where the FinBERT-sized model is cached: keyed by the builder, the sample posts and seed."""
    digest = hashlib.sha256()
    for source in (SCRIPTS / "make_finbert_like_model.py", SAMPLE_POSTS):
        digest.update(source.read_bytes())
    name = f"finbert-like-{digest.hexdigest()[:10]}-seed{seed}"
    return bench_cache_root() / name


def build_model(script: str, out: Path, args: Sequence[str] = ()) -> None:
    """Run a model builder script into `out`."""
    run(
        [sys.executable, str(SCRIPTS / script), str(out), *args],
        env=os.environ,
        timeout=900,
    )


def ensure_model(model: Path | None, quick: bool, seed: int, workdir: Path) -> tuple[Path, str]:
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


def load_corpus(posts: int, seed: int) -> list[str]:
    """`posts` texts: the non-empty sample texts, shuffled with `seed`, repeated as needed."""
    texts: list[str] = []
    with SAMPLE_POSTS.open(encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line).get("text") if line.strip() else None
            if isinstance(text, str) and text.strip():
                texts.append(text)
    rng = random.Random(seed)
    corpus: list[str] = []
    while len(corpus) < posts:
        batch = texts[:]
        rng.shuffle(batch)
        corpus += batch
    return corpus[:posts]


def write_posts(path: Path, texts: Sequence[str], tag: str) -> Path:
    """The corpus as importable JSON Lines (external_id unique per source)."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            record = {
                "source": f"bench_{tag}",
                "external_id": f"bench-{i:06d}",
                "author": "bench",
                "text": text,
                "published_at": (start + timedelta(minutes=i)).isoformat(),
            }
            fh.write(json.dumps(record) + "\n")
    return path
