"""Settings: environment parsing and specific validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from volfefe.config import Settings, default_layout
from volfefe.errors import ConfigError


def test_from_env_reads_volfefe_variables() -> None:
    s = Settings.from_env(
        {
            "VOLFEFE_MODEL": "/models/finbert",
            "VOLFEFE_WORKERS": "3",
            "VOLFEFE_CALL_TIMEOUT": "2.5",
            "DATABASE_URL": "postgresql://x/y",
            "VOLFEFE_DATA_DIR": "/tmp/vf",
        }
    )
    assert (s.model, s.workers, s.call_timeout) == ("/models/finbert", 3, 2.5)
    assert s.database_url == "postgresql://x/y" and s.data_dir == Path("/tmp/vf")


def test_overrides_win_and_none_is_ignored() -> None:
    s = Settings.from_env({"VOLFEFE_WORKERS": "3"}, workers=None, call_timeout=4.0)
    assert (s.workers, s.call_timeout) == (3, 4.0)


@pytest.mark.parametrize(
    "env, match",
    [
        ({"VOLFEFE_WORKERS": "many"}, "VOLFEFE_WORKERS must be a whole number, got 'many'"),
        (
            {"VOLFEFE_CALL_TIMEOUT": "-1"},
            "VOLFEFE_CALL_TIMEOUT='-1': call_timeout must be > 0, got -1.0",
        ),
        (
            {"VOLFEFE_BOOT_TIMEOUT": "0"},
            "VOLFEFE_BOOT_TIMEOUT='0': boot_timeout must be > 0, got 0.0",
        ),
        (
            {"VOLFEFE_DEVICE": "tpu"},
            "VOLFEFE_DEVICE='tpu': device must be one of auto, cpu, cuda, mps, got 'tpu'",
        ),
        (
            {"VOLFEFE_MAX_RESTARTS": "-2"},
            "VOLFEFE_MAX_RESTARTS='-2': max_restarts must be >= 0, got -2",
        ),
        ({"VOLFEFE_BATCH_SIZE": "0"}, "VOLFEFE_BATCH_SIZE='0': batch_size must be >= 1, got 0"),
    ],
)
def test_bad_values_are_named(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        Settings.from_env(env)
    assert caught.value.setting is not None


def test_a_bad_override_is_not_blamed_on_the_environment() -> None:
    with pytest.raises(ConfigError, match=r"^workers must be >= 1, got 0$") as caught:
        Settings.from_env({"VOLFEFE_WORKERS": "2"}, workers=0)
    assert caught.value.setting == "workers"


def test_threads_follow_workers_so_cores_are_not_oversubscribed() -> None:
    import os

    cores = os.cpu_count() or 1
    s = Settings(workers=cores)
    assert s.workers * s.child_threads <= max(cores, s.workers)
    more = Settings().replace(workers=2 * cores)  # threads follow a changed worker count
    assert more.child_threads == 1
    assert Settings(workers=1, threads=3).child_threads == 3


@pytest.mark.parametrize("cores, layout", [(1, (1, 1)), (2, (1, 2)), (4, (2, 2)), (16, (8, 2))])
def test_default_layout(cores: int, layout: tuple[int, int]) -> None:
    workers, threads = default_layout(cores)
    assert (workers, threads) == layout
    assert workers * threads <= cores
