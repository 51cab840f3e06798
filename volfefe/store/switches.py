"""Switches the database itself reads: `auto_enqueue` (the triggers on `contents`, 0005).

They live in the table `volfefe_settings` because the triggers run inside other applications'
transactions, where volfefe's environment is not. `VOLFEFE_AUTO_ENQUEUE=on|off` is written here
by `volfefe db migrate`; unset, the database keeps its choice (a new database starts "on").

>>> set_auto_enqueue(conn, False)  # doctest: +SKIP
>>> auto_enqueue(conn)  # doctest: +SKIP
False
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import tuple_row

GET = "SELECT value FROM volfefe_settings WHERE name = 'auto_enqueue'"
SET = """
INSERT INTO volfefe_settings (name, value) VALUES ('auto_enqueue', %(value)s)
ON CONFLICT (name) DO UPDATE SET value = excluded.value
"""


def auto_enqueue(conn: psycopg.Connection[Any]) -> bool:
    """Whether a post written to `contents` is queued for classification by the trigger."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(GET).fetchone()
    return row is not None and row[0] == "on"


def set_auto_enqueue(conn: psycopg.Connection[Any], on: bool) -> None:
    """Turn the auto-enqueue triggers on or off, for every writer, from the next statement."""
    with conn.transaction():
        conn.execute(SET, {"value": "on" if on else "off"})


def apply_switches(conn: psycopg.Connection[Any], auto_enqueue_setting: str | None) -> None:
    """Write the switches that are set (`"on"`/`"off"`); None leaves the database's choice."""
    if auto_enqueue_setting is not None:
        set_auto_enqueue(conn, auto_enqueue_setting == "on")
