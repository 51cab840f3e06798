"""Poison quarantine: posts whose text, sent alone, killed, hung or garbled a child.

```
PoisonText for post N ──quarantine()──> contents.quarantined_at = now(), quarantine_reason
   left out of: unclassified() (classify, classify --all), unclassified_ids() (jobs enqueue
   --all, the periodic enqueue); a job that got it fails at once (PoisonText is permanent)
   forced by:   classify --ids, jobs enqueue --ids, jobs retry (the post is tried again)
   lifted by:   a stored classification, or an import that changes the post's text
```
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

REASON_CHARS = 500

QUARANTINE = """
UPDATE contents SET quarantined_at = now(), quarantine_reason = %(reason)s
WHERE id = %(content_id)s
"""
QUARANTINED = """
SELECT id AS content_id, quarantined_at, quarantine_reason AS reason
FROM contents WHERE quarantined_at IS NOT NULL
ORDER BY quarantined_at DESC, id DESC
LIMIT %(limit)s
"""
COUNT = "SELECT count(*) AS n FROM contents WHERE quarantined_at IS NOT NULL"


@dataclass(frozen=True, slots=True)
class QuarantinedPost:
    """One quarantined post: when, and what its text did to a child."""

    content_id: int
    quarantined_at: datetime
    reason: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "content_id": self.content_id,
            "quarantined_at": self.quarantined_at.isoformat(),
            "reason": self.reason,
        }


def short_reason(reason: str) -> str:
    """The first line of a reason (what the child did; the stderr tail stays in the logs).

    >>> short_reason("the child crashed\\n--- last lines of the child's stderr ---\\nboom")
    'the child crashed'
    """
    return reason.strip().split("\n", 1)[0][:REASON_CHARS] or "poison text"


def quarantine(conn: psycopg.Connection[Any], content_id: int, reason: str) -> None:
    """Record post `content_id` as quarantined now, with `reason` (in the caller's transaction).

    >>> quarantine(conn, 7, "the child crashed during a call")  # doctest: +SKIP
    """
    conn.execute(QUARANTINE, {"content_id": content_id, "reason": short_reason(reason)})


def quarantined(conn: psycopg.Connection[Any], *, limit: int | None = 20) -> list[QuarantinedPost]:
    """The quarantined posts, most recent first (`limit=None`: all of them).

    >>> [p.content_id for p in quarantined(conn)]  # doctest: +SKIP
    [7]
    """
    with conn.cursor(row_factory=class_row(QuarantinedPost)) as cur:
        return cur.execute(QUARANTINED, {"limit": limit}).fetchall()


def count_quarantined(conn: psycopg.Connection[Any]) -> int:
    """How many posts are quarantined."""
    row = conn.execute(COUNT).fetchone()
    assert row is not None
    return int(row["n"] if isinstance(row, dict) else row[0])
