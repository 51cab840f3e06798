"""What the harness's subprocesses get: the run's settings and database, not the caller's."""

from __future__ import annotations

import os

import pytest

from volfefe.chaos.fleet import process_env
from volfefe.config import Settings


def test_subprocesses_get_the_configured_settings_and_only_the_runs_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://prod.example/volfefe")
    monkeypatch.setenv("VOLFEFE_JOBS_CONCURRENCY", "50")
    settings = Settings(model="/models/tiny", workers=3, call_timeout=7.5, revision=None)
    env = process_env(settings, "postgresql://run/volfefe", "poison=W,garbage-on-usr1")
    assert env["DATABASE_URL"] == "postgresql://run/volfefe"
    assert env["VOLFEFE_MODEL"] == "/models/tiny"
    assert env["VOLFEFE_WORKERS"] == "3"
    assert env["VOLFEFE_CALL_TIMEOUT"] == "7.5"
    assert "VOLFEFE_REVISION" not in env and "VOLFEFE_JOBS_CONCURRENCY" not in env
    assert env["VOLFEFE_WORKER_FAULT"] == "poison=W,garbage-on-usr1"
    assert env["VOLFEFE_JOBS_STALLED_AFTER"] == "5"
    assert env["PATH"] == os.environ["PATH"]
    Settings.from_env(env)  # and they read back as valid settings
