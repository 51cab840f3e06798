"""Shared fixtures: a clean environment, the tiny model, and Settings/Classifier factories.

Database fixtures live in tests/fixtures_db.py.
"""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from tests.helpers import UNRETRIEVED, Unretrieved
from volfefe import Classifier, Settings

pytest_plugins = ["tests.fixtures_db"]

ROOT = Path(__file__).resolve().parent.parent
TINY_LABELS = {"positive", "negative", "neutral"}


@pytest.fixture(scope="session", autouse=True)
def clean_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No VOLFEFE_* setting from the developer's shell; never reach a model hub; model exports
    go to a folder of this test run, shared by its xdist workers (the export takes its own
    file lock, so each is made once per run; subprocesses inherit all of this)."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("VOLFEFE_"):
            del os.environ[name]
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    cache = run_folder(tmp_path_factory) / "export-cache"
    cache.mkdir(exist_ok=True)
    os.environ["VOLFEFE_EXPORT_CACHE"] = str(cache)
    yield
    os.environ.clear()
    os.environ.update(saved)


# Markers given by what a test uses, so `-m "not child"` and the like select parts of the suite.
MARKERS_BY_FIXTURE = {"tiny_model": "child", "page": "browser", "browser": "browser"}
MARKERS_BY_FOLDER = {"acceptance": "cli", "bench": "bench", "chaos": "chaos", "docs": "docs"}


# The order tests start in, by marker: the longest kinds first, so that with pytest-xdist
# handing out tests one by one (`--maxschedchunk 1`, scripts/test) no long test starts last.
START_ORDER = ("bench", "docs", "slow", "chaos", "browser", "cli", "child")


def start_rank(item: pytest.Item) -> int:
    """Where a test's kind comes in START_ORDER (kinds not listed last)."""
    marks = {mark.name for mark in item.iter_markers()}
    return next((i for i, name in enumerate(START_ORDER) if name in marks), len(START_ORDER))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by what it needs: `child` (a real child process, the tiny model),
    `browser` (chromium), `server` (the $DATABASE_URL server), and by folder `cli`, `bench`,
    `chaos`, `docs`; then order them by START_ORDER."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in MARKERS_BY_FIXTURE.items():
            if fixture in used:
                item.add_marker(marker)
        folder = item.path.parent.name
        if folder in MARKERS_BY_FOLDER:
            item.add_marker(MARKERS_BY_FOLDER[folder])
        if "[server" in item.nodeid or "-server" in item.nodeid:
            item.add_marker("server")
    items.sort(key=start_rank)


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder shared by every pytest-xdist worker of this run (the session's own without
    xdist): what is built there once serves them all; guard it with a FileLock."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


_UNRETRIEVED = Unretrieved()


def pytest_configure(config: pytest.Config) -> None:
    """Watch the `asyncio` logger for futures and tasks whose exception nobody retrieved."""
    logging.getLogger("asyncio").addHandler(_UNRETRIEVED)


@pytest.fixture(autouse=True)
def no_unretrieved_exceptions() -> Iterator[None]:
    """Fail the test when asyncio logs "... exception was never retrieved" during it.

    asyncio logs that (through the `asyncio` logger, not as a warning) when such a future is
    garbage collected, so the test's garbage is collected before looking. What survives is
    then frozen (`gc.freeze`): a process that imported torch holds ~400,000 objects, and a
    full collection of them all costs ~0.6 s of CPU per test, so each collection scans only
    what the tests made since the last one.
    """
    _UNRETRIEVED.take()  # what an earlier test's teardown left is reported at the session end
    yield
    gc.collect()
    gc.freeze()
    if found := _UNRETRIEVED.take():
        pytest.fail(f"{UNRETRIEVED} during this test:\n" + "\n\n".join(found), pytrace=False)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the session when something logged it after the tests' own checks."""
    gc.unfreeze()
    gc.collect()
    if found := _UNRETRIEVED.take():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\n{UNRETRIEVED} after the tests' teardown:\n" + "\n\n".join(found))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random BERT, built once per run by the real script (whichever xdist worker
    asks first builds it; the others wait for it)."""
    shared = run_folder(tmp_path_factory)
    out, done = shared / "tiny-model", shared / "tiny-model.done"
    with FileLock(shared / "tiny-model.lock"):
        if not done.exists():
            subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "make_tiny_model.py"), str(out)],
                check=True,
                capture_output=True,
                timeout=120,
            )
            done.touch()
    return out


@pytest.fixture
def make_settings(tiny_model: Path, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for the tiny model with test-sized deadlines; `fault=` sets the worker fault.

    The backend is onnx: its child boots without importing torch (~0.1 s of CPU against
    ~3 s), and the supervision under test does not depend on it; a test about the torch
    backend asks for `backend="torch"`."""

    def make(fault: str | None = None, once: bool = True, **overrides: Any) -> Settings:
        env = {"HF_HUB_OFFLINE": "1"}
        if fault:
            env["VOLFEFE_WORKER_FAULT"] = fault
            if once:
                env["VOLFEFE_WORKER_FAULT_ONCE"] = str(tmp_path / "fault-fired")
        values: dict[str, Any] = {
            "model": str(tiny_model),
            "backend": "onnx",
            "export_cache": Path(os.environ["VOLFEFE_EXPORT_CACHE"]),
            "workers": 1,
            "threads": 1,
            "boot_timeout": 30.0,
            "call_timeout": 15.0,
            "shutdown_grace": 5.0,
            "worker_env": env,
            "data_dir": tmp_path / "data",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def make_classifier(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Classifier]]:
    """Classifiers that are closed when the test ends, whatever happens."""
    made: list[Classifier] = []

    def make(**kwargs: Any) -> Classifier:
        clf = Classifier(make_settings(**kwargs))
        made.append(clf)
        return clf

    yield make
    for clf in made:
        clf.close()
