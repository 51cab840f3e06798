"""Posts by length, to draw a length-stratified sample (calibrating a static int8 model).

Only ids and lengths are read for every post; the texts of the chosen ones are read after.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

IDS_BY_LENGTH = "SELECT id FROM contents WHERE has_text ORDER BY length(text), id"
TEXTS_BY_IDS = "SELECT text FROM contents WHERE id = ANY(%(ids)s) ORDER BY length(text), id"


def ids_by_length(conn: psycopg.Connection[Any]) -> list[int]:
    """The ids of every post with text, shortest text first."""
    return [int(_field(row, "id")) for row in conn.execute(IDS_BY_LENGTH).fetchall()]


def texts_by_ids(conn: psycopg.Connection[Any], ids: Sequence[int]) -> list[str]:
    """The texts of these posts, shortest first."""
    rows = conn.execute(TEXTS_BY_IDS, {"ids": list(ids)}).fetchall()
    return [str(_field(row, "text")) for row in rows]


def _field(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, dict) else row[0]
