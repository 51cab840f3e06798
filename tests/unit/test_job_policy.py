"""The jobs' retry policy and start-up checks: pure logic, no processes."""

from __future__ import annotations

import doctest
from pathlib import Path

import psycopg
import pytest

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
from volfefe.jobs import retry
from volfefe.jobs.app import check_crons
from volfefe.jobs.retry import interrupted, is_transient


def test_the_retry_policy_doctests() -> None:
    assert doctest.testmod(retry).failed == 0


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (WorkerCrashed(pid=1, returncode=-9), True),
        (PoolBroken("budget spent"), True),  # transient for a job, fatal for the CLI
        (PoolClosed("shutting down"), True),
        (DatabaseUnavailable("gone"), True),
        # a classifier whose children can no longer start: the worker stops, the job waits
        (ConfigError("the children cannot start with these settings"), True),
        (psycopg.errors.QueryCanceled("statement timeout"), True),
        (PoisonText("kills a child", reason="SIGKILL"), False),
        (NoTextError(), False),
        (ValueError("a bug"), False),
    ],
)
def test_one_policy_decides_what_a_job_retries(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


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
