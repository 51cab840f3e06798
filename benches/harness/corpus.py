"""What the suites classify: the non-empty texts of data/sample_posts.jsonl, drawn in one of
three seeded ways (each suite keeps the draw its published figures were measured with), and
the corpus written as importable JSON Lines."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .process import SAMPLE_POSTS


def sample_texts() -> list[str]:
    """The non-empty texts of the shipped sample posts, in file order."""
    texts: list[str] = []
    with SAMPLE_POSTS.open(encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line).get("text") if line.strip() else None
            if isinstance(text, str) and text.strip():
                texts.append(text)
    return texts


def shuffled(posts: int, seed: int) -> list[str]:
    """`posts` texts: the sample texts shuffled with `seed`, repeated as needed (throughput,
    runtimes, shapes)."""
    texts = sample_texts()
    rng = random.Random(seed)
    corpus: list[str] = []
    while len(corpus) < posts:
        batch = texts[:]
        rng.shuffle(batch)
        corpus += batch
    return corpus[:posts]


def drawn(posts: int, seed: int) -> list[str]:
    """`posts` texts drawn with repeats from one generator seeded with `seed` (http)."""
    texts = sample_texts()
    rng = random.Random(seed)
    return [rng.choice(texts) for _ in range(posts)]


def drawn_each(posts: int, seed: int) -> list[str]:
    """`posts` texts, the i-th drawn by a generator seeded with `seed + i` (realtime,
    bulk_order)."""
    texts = sample_texts()
    return [random.Random(seed + i).choice(texts) for i in range(posts)]


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
