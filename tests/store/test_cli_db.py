"""The database commands through click's CliRunner, against real PostgreSQL."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from tests.store.helpers import ids, post, result, write_jsonl
from volfefe.cli.db import db_group
from volfefe.cli.posts import import_command, show_command, stats_command
from volfefe.config import Settings
from volfefe.errors import ContentNotFound, SchemaOutdated
from volfefe.store.connect import connect
from volfefe.store.migrate import pending_migrations
from volfefe.store.posts import save_classification

Run = Callable[..., Result]


def make_runner(database_url: str, data_dir: Path) -> Run:
    """A stand-in for the main CLI group: it only builds Settings and registers our commands."""

    @click.group()
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        ctx.obj = Settings.from_env(os.environ, database_url=database_url, data_dir=data_dir)

    for command in (db_group, import_command, show_command, stats_command):
        cli.add_command(command)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, [str(arg) for arg in args])


@pytest.fixture
def run(database_url: str, tmp_path: Path) -> Run:
    return make_runner(database_url, tmp_path / "data")


def test_db_migrate_twice(empty_database_url: str, tmp_path: Path) -> None:
    run = make_runner(empty_database_url, tmp_path / "data")
    with connect(empty_database_url) as conn:
        pending = pending_migrations(conn)
    assert "0001_content" in pending
    first = run("db", "migrate")
    assert first.exit_code == 0, first.output
    assert first.stdout == "".join(f"applied {v}\n" for v in pending)
    second = run("db", "migrate")
    assert (second.exit_code, second.stdout) == (0, "database schema is up to date\n")


def test_commands_refuse_an_unmigrated_database(empty_database_url: str, tmp_path: Path) -> None:
    run = make_runner(empty_database_url, tmp_path / "data")
    outcome = run("stats")
    assert isinstance(outcome.exception, SchemaOutdated)


def test_import_prints_counts_and_exits_1_on_rejected_rows(run: Run, tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [post("1"), post("2")])
    outcome = run("import", good)
    assert (outcome.exit_code, outcome.stdout) == (
        0,
        "inserted 2, updated 0, unchanged 0, rejected 0\n",
    )
    assert run("import", good).stdout == "inserted 0, updated 0, unchanged 2, rejected 0\n"

    mixed = write_jsonl(tmp_path / "mixed.jsonl", [post("3"), {"source": "x"}, "nope"])
    outcome = run("import", mixed)
    assert outcome.exit_code == 1
    assert outcome.stdout == "inserted 1, updated 0, unchanged 0, rejected 2\n"
    assert outcome.stderr.splitlines() == [
        "line 2: missing external_id",
        "line 3: invalid JSON: Expecting value (column 1)",
    ]


def test_import_usage_errors_exit_2(run: Run, tmp_path: Path) -> None:
    missing = run("import", tmp_path / "nope.jsonl")
    assert missing.exit_code == 2
    assert "does not exist" in missing.stderr
    text = tmp_path / "posts.txt"
    text.write_text("hi", encoding="utf-8")
    wrong = run("import", text)
    assert wrong.exit_code == 2
    assert "expected one of .jsonl" in wrong.stderr


def test_stats_json_and_table(run: Run, database_url: str, tmp_path: Path) -> None:
    run("import", write_jsonl(tmp_path / "p.jsonl", [post("1"), post("2"), post("3", text="")]))
    with connect(database_url) as conn:
        save_classification(conn, ids(conn)["1"], result("positive", 0.97))

    as_json = run("stats", "--json", "--threshold", "0.95")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == {
        "total": 3,
        "classified": 1,
        "unclassified": 1,
        "quarantined": 0,
        "empty_text": 1,
        "distribution": {"positive": 1, "negative": 0, "neutral": 0},
        "high_confidence": 1,
        "threshold": 0.95,
    }
    table = run("stats")
    assert table.exit_code == 0, table.output
    for expected in ("classified", "unclassified", "empty text", "positive", "33.3", "100.0"):
        assert expected in table.stdout
    assert run("stats", "--threshold", "2").exit_code == 2


def test_show_post_with_and_without_classification(
    run: Run, database_url: str, tmp_path: Path
) -> None:
    run("import", write_jsonl(tmp_path / "p.jsonl", [post("1", "Tariffs! [bold]x[/]"), post("2")]))
    with connect(database_url) as conn:
        one, two = ids(conn)["1"], ids(conn)["2"]
        save_classification(conn, one, result("negative", 0.875))

    text = run("show", one)
    assert text.exit_code == 0, text.output
    assert "Tariffs! [bold]x[/]" in text.stdout
    assert "classification: negative (0.875) by finbert@test" in text.stdout
    assert "classification: none" in run("show", two).stdout

    shown = json.loads(run("show", one, "--json").stdout)
    assert shown["content"]["external_id"] == "1"
    assert shown["content"]["published_at"].startswith("2025-01-01T12:00:00")
    assert shown["classification"]["sentiment"] == "negative"
    assert shown["classification"]["meta"]["tokens"] == 7
    assert json.loads(run("show", two, "--json").stdout)["classification"] is None


def test_show_unknown_id_is_an_error(run: Run) -> None:
    outcome = run("show", 424242)
    assert outcome.exit_code == 1
    assert isinstance(outcome.exception, ContentNotFound)
