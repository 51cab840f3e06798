"""The chaos harness's database: a server that a failed restart left stopped is started
again the way volfefe starts its embedded one, on the same socket, and the harness's URL
connects to it."""

from __future__ import annotations

from pathlib import Path

import psycopg

from volfefe.chaos.database import ChaosDatabase


def test_a_stopped_server_is_started_again_on_the_same_socket(tmp_path: Path) -> None:
    db = ChaosDatabase(tmp_path)
    try:
        first = db.postmaster_pid()
        assert first is not None
        db.stop()  # as pg_ctl's restart leaves it when it times out
        assert db.postmaster_pid() is None
        db.start()
        assert db.postmaster_pid() not in (None, first)
        with psycopg.connect(db.url, connect_timeout=10) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        db.stop()
