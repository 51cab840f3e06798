"""Connections: clear errors, and the embedded server shared between processes and runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT as REPO_ROOT
from tests.fixtures_db import stop_embedded
from volfefe.config import Settings
from volfefe.errors import ConfigError, DatabaseUnavailable
from volfefe.store.connect import connect, describe_target, resolve_database_url, with_limits
from volfefe.store.embedded import AUTHENTICATION_TIMEOUT, wait_until_ready
from volfefe.store.migrate import pending_migrations

# A volfefe process: connect through Settings (embedded server in argv[1]), report, wait for a
# line on stdin, then query again. The test decides when each process moves on.
CHILD = """
import json, sys
from pathlib import Path
from volfefe.config import Settings
from volfefe.store.connect import connect
with connect(Settings(data_dir=Path(sys.argv[1]))) as conn:
    q = "SELECT pg_postmaster_start_time()::text AS started, count(*) AS posts FROM contents"
    print(json.dumps(conn.execute(q).fetchone()), flush=True)
    sys.stdin.readline()
    print(json.dumps(conn.execute(q).fetchone()), flush=True)
"""


def test_unreachable_server_raises_database_unavailable_fast() -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as caught:
        connect("postgresql://postgres:s3cret@127.0.0.1:1/x", connect_timeout=2)
    assert time.monotonic() - started < 30  # not the deadline
    message = str(caught.value)
    assert "host 127.0.0.1 port 1, database x" in message
    assert "s3cret" not in message
    assert caught.value.transient


def test_describe_target_hides_the_password_and_rejects_garbage() -> None:
    assert "secret" not in describe_target("postgresql://u:secret@h:5/db")
    assert describe_target("host=/run/pg dbname=v") == "host /run/pg, database v"
    with pytest.raises(ConfigError, match="not a valid"):
        describe_target("postgresql://u:p@h/db?bogus=1")


def test_connect_with_settings_uses_database_url(settings_for_db: Settings) -> None:
    assert settings_for_db.database_url is not None
    resolved = resolve_database_url(settings_for_db)  # the URL, with connection limits added
    assert resolved == with_limits(settings_for_db.database_url, settings_for_db)
    with connect(settings_for_db) as conn:
        assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}
        assert conn.autocommit


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder for volfefe's own embedded server; the server is stopped afterwards."""
    # Outside pytest's basetemp on purpose: see embedded_server_url in tests/fixtures_db.py.
    folder = Path(tempfile.mkdtemp(prefix="volfefe-test-data-"))
    try:
        yield folder
    finally:
        stop_embedded(folder / "pgdata")
        shutil.rmtree(folder, ignore_errors=True)


def _spawn(data_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )


def _finish(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, _ = proc.communicate("go on\n", timeout=60)
    assert proc.returncode == 0
    return json.loads(out.splitlines()[-1])


@pytest.mark.db
@pytest.mark.slow
def test_embedded_server_is_shared_by_concurrent_processes_and_reused(data_dir: Path) -> None:
    first, second = _spawn(data_dir), _spawn(data_dir)
    try:
        # Both started at once: one ran initdb and started the server, the other attached.
        hello_first = json.loads(first.stdout.readline())  # type: ignore[union-attr]
        hello_second = json.loads(second.stdout.readline())  # type: ignore[union-attr]
        assert hello_first == hello_second == {"started": hello_first["started"], "posts": 0}

        # The first process exits; the second must still be able to work.
        assert _finish(first) == hello_first
        assert _finish(second) == hello_first
    finally:
        for proc in (first, second):
            proc.kill()
            proc.wait(timeout=10)

    # A later run reuses the same server (same start time) and database.
    later = _spawn(data_dir)
    assert _finish(later) == hello_first


@pytest.mark.db
def test_embedded_database_is_migrated_and_its_logins_bounded_on_first_use(
    data_dir: Path,
) -> None:
    settings = Settings(data_dir=data_dir)
    url = resolve_database_url(settings)
    assert str(data_dir / "pgdata") in url
    with connect(url) as conn:
        assert pending_migrations(conn) == []
        assert conn.execute("SELECT current_database() AS db").fetchone() == {"db": "volfefe"}
        # A connection that never sends its startup packet cannot hold a stop for a minute.
        timeout = conn.execute("SHOW authentication_timeout").fetchone()
        assert timeout == {"authentication_timeout": f"{AUTHENTICATION_TIMEOUT}s"}
    assert resolve_database_url(settings) == url


@pytest.mark.db
def test_a_slow_start_is_waited_for_until_the_server_says_ready(data_dir: Path) -> None:
    # pgserver's own `pg_ctl start` gives up after 10 s; volfefe then waits for the server it
    # launched, reading its readiness where postgres writes it, and stops at once without one.
    resolve_database_url(Settings(data_dir=data_dir))
    pgdata = data_dir / "pgdata"
    assert wait_until_ready(pgdata, time.monotonic() + 30)
    stop_embedded(pgdata)
    started = time.monotonic()
    assert not wait_until_ready(pgdata, started + 60)
    assert time.monotonic() - started < 30  # not the deadline
