"""Every console and Python example of the README and the docs runs as written.

Each page runs in a reader's shell (tests/docs/examples.py) against the tiny model and a
fresh migrated database of its own (auto-enqueue on, as `db migrate` leaves it); the pages
with an HTTP example start their own `serve` in the background, as they tell the reader to.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.docs.examples import ROOT, Reader, matches, pages, parse, run_example, runnable
from tests.fixtures_db import backends_in_use, fresh_database
from tests.helpers import assert_no_unretrieved
from volfefe.store.switches import set_auto_enqueue

RUNNING = [page for page in pages() if any(runnable(page))]

# What the reader's shell has besides the page's own commands: the tiny model, one child of
# one thread, and job timings short enough for a test.
READER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VOLFEFE_BACKEND": "onnx",
    "VOLFEFE_WORKERS": "1",
    "VOLFEFE_THREADS": "1",
    "VOLFEFE_BOOT_TIMEOUT": "60",
    "VOLFEFE_SHUTDOWN_GRACE": "5",
    "VOLFEFE_JOBS_POLL_INTERVAL": "0.5",
    "VOLFEFE_JOBS_ENQUEUE_CRON": "off",
    "VOLFEFE_JOBS_PRUNE_CRON": "off",
}


@pytest.fixture(params=backends_in_use())
def page_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh migrated database for one page, with auto-enqueue on (`db migrate`'s default;
    the test template turns it off)."""
    admin_url, template = request.getfixturevalue(f"{request.param}_template")
    with fresh_database(admin_url, template) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            set_auto_enqueue(conn, True)
        yield url


def reader_env(tiny_model: Path, database_url: str, data_dir: Path) -> dict[str, str]:
    """The environment of a reader who set VOLFEFE_MODEL and DATABASE_URL."""
    python_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFEFE_")}
    env.pop("PYTEST_CURRENT_TEST", None)
    return {
        **env,
        **READER_ENV,
        "PATH": python_bin + os.pathsep + env.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "VOLFEFE_MODEL": str(tiny_model),
        "VOLFEFE_EXPORT_CACHE": os.environ["VOLFEFE_EXPORT_CACHE"],
        "VOLFEFE_DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
    }


@pytest.mark.slow
@pytest.mark.db
@pytest.mark.parametrize("page", RUNNING, ids=[str(p.relative_to(ROOT)) for p in RUNNING])
def test_page_examples_run_as_written(
    page: Path, tiny_model: Path, page_database_url: str, tmp_path: Path
) -> None:
    reader = Reader(reader_env(tiny_model, page_database_url, tmp_path / "data"))
    try:
        for example in runnable(page):
            run_example(reader, example)
    except AssertionError as failed:
        logs = reader.close()
        shown = "\n".join(f"--- background command {i} ---\n{log}" for i, log in enumerate(logs, 1))
        raise AssertionError(f"{failed}\n{shown}") from None
    logs = reader.close()
    for log in logs:
        assert_no_unretrieved(log)


def test_every_example_runs_or_says_why_not() -> None:
    """A shell block that is not run (`sh`, `bash`) carries a `not executed` reason."""
    unmarked = [
        e.where
        for page in pages()
        for e in parse(page)
        if e.kind not in ("console", "python") and e.skip is None
    ]
    assert not unmarked, f"write `console`, or mark `<!-- not executed: why -->`: {unmarked}"


def test_output_matching_rules() -> None:
    """`…` is any text within a line; a line of only `…` is any number of lines."""
    assert matches(['{"id":…,"ok":true}'], '{"id":12,"ok":true}\n')
    assert not matches(['{"id":…,"ok":true}'], '{"id":12,"ok":false}\n')
    assert not matches(["a…"], "ab\nc\n")  # `…` in a line stays in the line
    assert matches(["first", "…", "last"], "first\n1\n2\nlast\n")
    assert matches(["first", "…", "last"], "first\nlast\n")
    assert not matches(["first", "last"], "first\nmiddle\nlast\n")
    assert matches([], "anything\n")
    reconnect = "2026-12-06 03:12:16,756 WARNING volfefe.store.signals: lost it\n\tbecause\n"
    assert matches(
        ['{"id":1}'], reconnect + '{"id":1}\n'
    )  # log records are left out  # a command shown without output: its status counts
