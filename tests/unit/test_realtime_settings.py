"""Settings of the real-time path: the auto-enqueue switch and the job worker's slots."""

from __future__ import annotations

import pytest

from volfefe.config import Settings
from volfefe.errors import ConfigError


def test_auto_enqueue_is_on_off_or_unset() -> None:
    with pytest.raises(ConfigError, match="auto_enqueue must be on or off, got 'maybe'"):
        Settings.from_env({"VOLFEFE_AUTO_ENQUEUE": "maybe"})
    assert Settings.from_env({"VOLFEFE_AUTO_ENQUEUE": "off"}).auto_enqueue == "off"
    assert Settings.from_env({}).auto_enqueue is None


def test_job_slots_fill_every_childs_batch_by_default() -> None:
    assert Settings(workers=2, batch_size=16).job_slots == 48
    assert Settings(workers=2, jobs_concurrency=5).job_slots == 5
    with pytest.raises(ConfigError, match="jobs_concurrency must be >= 0"):
        Settings(jobs_concurrency=-1)
