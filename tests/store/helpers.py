"""Small helpers shared by the store tests: writing import files and polling."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import psycopg

from tests.helpers import eventually as eventually  # one copy, re-exported
from tests.helpers import write_jsonl as write_jsonl
from volfefe.result import Classification
from volfefe.store.importer import ImportReport, import_posts


def post(external_id: str, text: str = "Stocks rally", **fields: Any) -> dict[str, Any]:
    """One import record with sensible defaults."""
    return {
        "source": "truth_social",
        "external_id": external_id,
        "author": "someone",
        "text": text,
        "published_at": "2025-01-01T12:00:00Z",
        "url": f"https://example.test/{external_id}",
        **fields,
    }


def write_csv(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write records as CSV with a header line."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return path


def load(conn: psycopg.Connection[Any], tmp_path: Path, records: list[Any]) -> ImportReport:
    """Import these records through a JSON Lines file."""
    return import_posts(conn, write_jsonl(tmp_path / "posts.jsonl", records))


def ids(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """external_id -> content id."""
    rows = conn.execute("SELECT external_id, id FROM contents").fetchall()
    return {row["external_id"]: row["id"] for row in rows}


def result(
    sentiment: str = "positive", confidence: float = 0.95, model_version: str = "finbert@test"
) -> Classification:
    """A Classification with raw scores that add up."""
    rest = (1 - confidence) / 2
    scores = {
        s: confidence if s == sentiment else rest for s in ("positive", "negative", "neutral")
    }
    return Classification(sentiment, confidence, model_version, scores, truncated=False, tokens=7)


def incompressible(size: int, seed: int) -> str:
    """`size` bytes of UTF-8 that PostgreSQL cannot compress into an index row (random
    three-byte characters), so the index limit is met as it would be by real data."""
    rng = random.Random(seed)
    assert size % 3 == 0
    return "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(size // 3))
