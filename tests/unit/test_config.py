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
        ({"VOLFEFE_MAX_QUEUED": "0"}, "VOLFEFE_MAX_QUEUED='0': max_queued must be >= 1, got 0"),
        (
            {"VOLFEFE_REQUEST_TIMEOUT": "-1"},
            r"VOLFEFE_REQUEST_TIMEOUT='-1': request_timeout must be >= 0 \(0 = derived\), got -1.0",
        ),
        (
            {"VOLFEFE_MAX_CHILD_CALLS": "-1"},
            r"VOLFEFE_MAX_CHILD_CALLS='-1': max_child_calls must be >= 0 \(0 = off\), got -1",
        ),
        (
            {"VOLFEFE_MAX_CHILD_RSS_MB": "-5"},
            r"VOLFEFE_MAX_CHILD_RSS_MB='-5': max_child_rss_mb must be >= 0 \(0 = off\), got -5",
        ),
        (
            {"VOLFEFE_REBUILD_BACKOFF": "0"},
            "VOLFEFE_REBUILD_BACKOFF='0': rebuild_backoff must be > 0, got 0.0",
        ),
        (
            {"VOLFEFE_REBUILD_BACKOFF": "10", "VOLFEFE_REBUILD_BACKOFF_MAX": "5"},
            r"rebuild_backoff_max \(5.0\) must be >= rebuild_backoff \(10.0\)",
        ),
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


def test_supervision_settings_from_env() -> None:
    s = Settings.from_env(
        {
            "VOLFEFE_REQUEST_TIMEOUT": "7",
            "VOLFEFE_MAX_QUEUED": "100",
            "VOLFEFE_MAX_CHILD_CALLS": "1000",
            "VOLFEFE_MAX_CHILD_RSS_MB": "2048",
            "VOLFEFE_REBUILD_BACKOFF": "2",
            "VOLFEFE_REBUILD_BACKOFF_MAX": "30",
        }
    )
    assert (s.request_timeout, s.effective_request_timeout, s.max_queued) == (7.0, 7.0, 100)
    assert (s.max_child_calls, s.max_child_rss_mb) == (1000, 2048)
    assert (s.rebuild_backoff, s.rebuild_backoff_max) == (2.0, 30.0)
    derived = Settings(boot_timeout=20, call_timeout=5)
    assert derived.effective_request_timeout == 30.0  # boot + 2 x call


def test_to_env_gives_the_same_settings_back_through_from_env(tmp_path: Path) -> None:
    settings = Settings(
        model=str(tmp_path / "model"),
        revision="abc123",
        workers=3,
        call_timeout=2.5,
        request_timeout=0.1,
        max_restarts=0,
        data_dir=tmp_path / "data",
        export_cache=tmp_path / "cache",
        database_url="postgresql://u@h/db",
        jobs_enqueue_cron="off",
        api_token="a-long-enough-secret-token",
    )
    env = settings.to_env()
    assert all(k.startswith("VOLFEFE_") or k == "DATABASE_URL" for k in env)
    assert Settings.from_env(env) == settings


def test_to_env_of_some_fields_leaves_none_and_the_rest_out() -> None:
    settings = Settings(workers=2, revision=None, api_token="a-long-enough-secret-token")
    assert settings.to_env(["workers", "revision"]) == {"VOLFEFE_WORKERS": "2"}
    assert "VOLFEFE_API_TOKEN" not in Settings().to_env()
    with pytest.raises(ValueError, match="'worker_cmd' has no environment variable"):
        settings.to_env(["worker_cmd"])


def test_the_reference_pages_are_current() -> None:
    # docs/configuration.md and docs/errors.md are written from the declarations.
    from volfefe.cli.reference import main

    assert main(["--check"]) == 0, "run: python -m volfefe.cli.reference"


def test_a_renamed_variable_is_still_read_with_a_warning() -> None:
    with pytest.warns(FutureWarning, match="VOLFEFE_ONNX_CACHE is now VOLFEFE_EXPORT_CACHE"):
        settings = Settings.from_env({"VOLFEFE_ONNX_CACHE": "/srv/exports"})
    assert settings.export_cache == Path("/srv/exports")
    assert Settings.from_env(
        {"VOLFEFE_ONNX_CACHE": "/old", "VOLFEFE_EXPORT_CACHE": "/new"}
    ).export_cache == Path("/new")


def test_every_declared_setting_round_trips_through_its_variable() -> None:
    from volfefe.config import declared

    for name, _, spec in declared():
        assert spec.env.startswith("VOLFEFE_") or spec.env == "DATABASE_URL", name
        assert spec.doc and spec.section, name
    settings = Settings(workers=3, call_timeout=2.5, api_token="x" * 16, auto_enqueue="off")
    again = Settings.from_env(settings.to_env())
    assert again == settings.replace(worker_env=again.worker_env)


def test_the_global_options_come_from_the_declarations() -> None:
    from click.testing import CliRunner

    from volfefe.cli.main import cli
    from volfefe.config import declared

    text = CliRunner().invoke(cli, ["--help"], terminal_width=200).output
    for name, _, spec in declared():
        assert (f"--{name.replace('_', '-')} " in text) == spec.option, name
        if spec.option:
            assert spec.env in text, name


@pytest.mark.parametrize(
    "overrides",
    [{"backend": "torch"}, {"backend": "openvino"}, {"backend": "auto", "quantize": "bf16"}],
)
def test_preempting_between_layers_needs_onnx(overrides: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"^preempt layers needs the onnx backend") as caught:
        Settings(preempt="layers", **overrides)
    assert caught.value.setting == "preempt"


def test_preempting_between_layers_makes_auto_pick_onnx() -> None:
    assert Settings.from_env({"VOLFEFE_PREEMPT": "layers"}).resolved_backend == "onnx"
    assert Settings(preempt="layers", quantize="int8").resolved_backend == "onnx"
    with pytest.raises(ConfigError, match="must be one of off, layers"):
        Settings.from_env({"VOLFEFE_PREEMPT": "heads"})
