"""The jobs' retry policy and start-up checks: pure logic, no processes."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from procrastinate.jobs import Job

from volfefe.config import Settings, default_data_dir
from volfefe.errors import (
    ConfigError,
    DatabaseUnavailable,
    NoTextError,
    PoisonText,
    PoolBroken,
    PoolClosed,
    WorkerCrashed,
)
from volfefe.jobs.app import check_crons
from volfefe.jobs.retry import TransientRetry, interrupted, is_transient


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (WorkerCrashed(pid=1, returncode=-9), True),
        (PoolBroken("budget spent"), True),  # transient for a job, fatal for the CLI
        (PoolClosed("shutting down"), True),
        (DatabaseUnavailable("gone"), True),
        # the worker's state, not the post's: see worker_cannot_classify
        (ConfigError("the children cannot start with these settings"), False),
        (psycopg.errors.QueryCanceled("statement timeout"), True),
        (PoisonText("kills a child", reason="SIGKILL"), False),
        (NoTextError(), False),
        (ValueError("a bug"), False),
    ],
)
def test_one_policy_decides_what_a_job_retries(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


@pytest.mark.parametrize("attempts_so_far", [0, 5])
def test_a_worker_that_cannot_classify_brings_its_jobs_back_whatever_the_cap(
    attempts_so_far: int,
) -> None:
    strategy = TransientRetry(total_attempts=1, backoff=2.0)
    job = Job(
        id=1,
        queue="ml_classification",
        lock=None,
        queueing_lock=None,
        task_name="volfefe.classify_post",
        attempts=attempts_so_far,
    )
    error = ConfigError("the children cannot start with these settings")
    decision = strategy.get_retry_decision(exception=error, job=job)
    assert decision is not None and decision.retry_at is not None  # after the backoff
    assert strategy.get_retry_decision(exception=NoTextError(), job=job) is None


def test_only_a_shutdown_counts_as_interrupted() -> None:
    assert interrupted(PoolClosed("closing"))
    assert not interrupted(PoolBroken("budget spent"))


@pytest.mark.parametrize("var", ["ENQUEUE", "PRUNE", "RESCUE"])
@pytest.mark.parametrize("cron", ["61 * * * *", "bogus", "* * *", "0 25 * * *"])
def test_a_bad_cron_is_a_config_error_naming_the_variable(var: str, cron: str) -> None:
    settings = Settings.from_env({f"VOLFEFE_JOBS_{var}_CRON": cron})
    with pytest.raises(ConfigError, match=f"VOLFEFE_JOBS_{var}_CRON is not a valid cron"):
        check_crons(settings)


def test_off_and_six_field_crons_are_fine() -> None:
    check_crons(Settings(jobs_enqueue_cron="off", jobs_rescue_cron="* * * * * */1"))


def test_connection_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="db_statement_timeout must be >= 0"):
        Settings.from_env({"VOLFEFE_DB_STATEMENT_TIMEOUT": "-1"})
    with pytest.raises(ConfigError, match="db_connect_timeout must be > 0"):
        Settings.from_env({"VOLFEFE_DB_CONNECT_TIMEOUT": "0"})
    with pytest.raises(ConfigError, match="jobs_max_rebuilds must be >= 1"):
        Settings.from_env({"VOLFEFE_JOBS_MAX_REBUILDS": "0"})


def test_root_keeps_its_embedded_data_out_of_its_home() -> None:
    assert default_data_dir({}, euid=0) == Path("/var/lib/volfefe")
    assert default_data_dir({"XDG_DATA_HOME": "/srv/x"}, euid=0) == Path("/srv/x/volfefe")
    assert default_data_dir({}, euid=1000) == Path.home() / ".local/share/volfefe"
