"""Importing posts: idempotent, edits update (and reset classification), bad rows reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import ROOT as REPO_ROOT
from tests.store.helpers import ids, load, post, result, write_csv, write_jsonl
from volfefe.store.importer import import_posts
from volfefe.store.posts import (
    get_classification_by_content,
    get_content,
    save_classification,
    unclassified,
)

Conn = psycopg.Connection[Any]


def test_reimporting_the_same_file_changes_nothing(db_conn: Conn, tmp_path: Path) -> None:
    records = [post("1"), post("2", text=""), post("3", source="x_com")]
    first = load(db_conn, tmp_path, records)
    assert (first.inserted, first.updated, first.unchanged, first.rejected) == (3, 0, 0, [])
    before = db_conn.execute("SELECT id, updated_at FROM contents ORDER BY id").fetchall()

    second = load(db_conn, tmp_path, records)
    assert (second.inserted, second.updated, second.unchanged, second.rejected) == (0, 0, 3, [])
    assert db_conn.execute("SELECT id, updated_at FROM contents ORDER BY id").fetchall() == before
    sources = db_conn.execute("SELECT name FROM sources ORDER BY name").fetchall()
    assert [row["name"] for row in sources] == ["truth_social", "x_com"]


def test_edited_text_updates_the_post_and_resets_its_classification(
    db_conn: Conn, tmp_path: Path
) -> None:
    load(db_conn, tmp_path, [post("1", "Tariffs are great"), post("2", "Markets are calm")])
    one, two = ids(db_conn)["1"], ids(db_conn)["2"]
    save_classification(db_conn, one, result("positive"))
    save_classification(db_conn, two, result("neutral"))

    edited = [post("1", "Tariffs are terrible"), post("2", "Markets are calm", author="new")]
    report = load(db_conn, tmp_path, edited)

    assert (report.inserted, report.updated, report.unchanged) == (0, 2, 0)
    assert get_content(db_conn, one).text == "Tariffs are terrible"
    assert get_content(db_conn, one).classified is False
    assert get_classification_by_content(db_conn, one) is None
    assert [row.id for row in unclassified(db_conn)] == [one]
    # Only the author changed: the classification still describes this text, so it stays.
    assert get_content(db_conn, two).author == "new"
    assert get_content(db_conn, two).classified is True
    assert get_classification_by_content(db_conn, two) is not None


def test_bad_rows_are_reported_by_line_and_the_rest_imports(db_conn: Conn, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mixed.ndjson",
        [
            post("ok-1"),  # line 1
            {"source": "truth_social", "text": "no id"},  # line 2
            post("bad-date", published_at="next tuesday"),  # line 3
            post("nul", text="a\u0000b"),  # line 4
            "[1, 2, 3]",  # line 5
            "{not json",  # line 6
            "",  # line 7: blank lines are skipped
            post("no-source", source=None),  # line 8
            post("ok-2", text=7),  # line 9
            post("ok-3", published_at=1735732800),  # line 10
        ],
    )

    report = import_posts(db_conn, path)

    assert report.inserted == 2
    assert [line for line, _ in report.rejected] == [2, 3, 4, 5, 6, 8, 9]
    reasons = dict(report.rejected)
    assert reasons[2] == "missing external_id"
    assert reasons[3] == "published_at is not a date: 'next tuesday'"
    assert reasons[4] == "text contains a NUL byte"
    assert reasons[5] == "expected an object, got an array"
    assert reasons[6].startswith("invalid JSON:")
    assert reasons[8] == "missing source"
    assert reasons[9] == "text must be a string, got a number"
    assert set(ids(db_conn)) == {"ok-1", "ok-3"}
    assert get_content(db_conn, ids(db_conn)["ok-3"]).published_at == datetime(
        2025, 1, 1, 12, tzinfo=UTC
    )


def test_invalid_utf8_is_rejected_for_its_line_only(db_conn: Conn, tmp_path: Path) -> None:
    path = tmp_path / "bytes.jsonl"
    good = json.dumps(post("ok")).encode()
    path.write_bytes(good + b"\n" + good.replace(b'"ok"', b'"bad\xff"') + b"\n")

    report = import_posts(db_conn, path)

    assert report.inserted == 1
    assert report.rejected == [(2, "external_id is not valid UTF-8")]


def test_json_array_reports_the_line_where_each_element_starts(
    db_conn: Conn, tmp_path: Path
) -> None:
    path = tmp_path / "posts.json"
    path.write_text(
        "[\n"
        + ",\n".join(json.dumps(r, indent=2) for r in [post("a"), {"source": "s"}, post("b")])
        + "\n]\n",
        encoding="utf-8",
    )
    second_element_line = 1 + len(json.dumps(post("a"), indent=2).splitlines()) + 1

    report = import_posts(db_conn, path)

    assert report.inserted == 2
    assert report.rejected == [(second_element_line, "missing external_id")]


def test_json_array_stops_at_a_syntax_error_after_importing_what_came_before(
    db_conn: Conn, tmp_path: Path
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(f'[\n{json.dumps(post("a"))},\n{{"source": }},\n{json.dumps(post("b"))}\n]')

    report = import_posts(db_conn, path)

    assert report.inserted == 1
    assert len(report.rejected) == 1
    line, reason = report.rejected[0]
    assert line == 3
    assert reason.startswith("invalid JSON") and "the rest was not read" in reason


def test_json_file_that_is_not_an_array_is_one_rejection(db_conn: Conn, tmp_path: Path) -> None:
    path = tmp_path / "object.json"
    path.write_text(json.dumps(post("a")), encoding="utf-8")
    report = import_posts(db_conn, path)
    assert (report.inserted, report.rejected) == (0, [(1, "expected a JSON array of objects")])


def test_csv_reports_file_line_numbers_across_multiline_fields(
    db_conn: Conn, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "posts.csv",
        [
            post("1", text="first line\nsecond line"),  # lines 2-3
            post("2", published_at="garbage"),  # line 4
            post("3", author="", url=""),  # line 5
        ],
    )

    report = import_posts(db_conn, path)

    assert report.inserted == 2
    assert report.rejected == [(4, "published_at is not a date: 'garbage'")]
    assert get_content(db_conn, ids(db_conn)["1"]).text == "first line\nsecond line"
    third = get_content(db_conn, ids(db_conn)["3"])
    assert (third.author, third.url) == (None, None)
    assert import_posts(db_conn, path).unchanged == 2


def test_csv_takes_unix_seconds_as_json_does(db_conn: Conn, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "posts.csv",
        [post("s", published_at="1735732800"), post("f", published_at=" 1735732800.5 ")],
    )

    report = import_posts(db_conn, path)

    assert (report.inserted, report.rejected) == (2, [])
    noon = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert get_content(db_conn, ids(db_conn)["s"]).published_at == noon
    assert get_content(db_conn, ids(db_conn)["f"]).published_at == noon + timedelta(seconds=0.5)


def test_csv_without_an_id_column_is_rejected_at_the_header(db_conn: Conn, tmp_path: Path) -> None:
    path = tmp_path / "posts.csv"
    path.write_text("source,text\ntruth_social,hello\n", encoding="utf-8")
    report = import_posts(db_conn, path)
    assert report.rejected == [(1, "the CSV header has no external_id column")]


def test_duplicates_within_a_file(db_conn: Conn, tmp_path: Path) -> None:
    report = load(db_conn, tmp_path, [post("1"), post("1"), post("1", text="other")])
    assert (report.inserted, report.unchanged) == (1, 1)
    assert report.rejected == [(3, "same source and external_id as line 1, other content")]


def test_hook_gets_ids_needing_classification_inside_the_transaction(
    db_conn: Conn, tmp_path: Path
) -> None:
    calls: list[list[int]] = []

    def on_inserted(cur: psycopg.Cursor[Any], content_ids: list[int]) -> None:
        # Same transaction: the rows are visible here, and not committed yet.
        assert cur.connection.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        found = cur.execute(
            "SELECT count(*) AS n FROM contents WHERE id = ANY(%(ids)s)", {"ids": content_ids}
        ).fetchone()
        assert found == {"n": len(content_ids)}
        calls.append(content_ids)

    records = [post("1"), post("2", text=" \n\t"), post("3")]
    path = write_jsonl(tmp_path / "posts.jsonl", records)
    import_posts(db_conn, path, on_inserted=on_inserted)
    assert calls == [[ids(db_conn)["1"], ids(db_conn)["3"]]]

    write_jsonl(path, [post("1", text="edited"), post("2", text=" \n\t", author="b"), post("3")])
    import_posts(db_conn, path, on_inserted=on_inserted)
    assert calls[1:] == [[ids(db_conn)["1"]]]


def test_a_failing_hook_rolls_its_batch_back(db_conn: Conn, tmp_path: Path) -> None:
    def on_inserted(cur: psycopg.Cursor[Any], content_ids: list[int]) -> None:
        raise RuntimeError("queue is down")

    path = write_jsonl(tmp_path / "posts.jsonl", [post("1"), post("2"), post("3")])
    with pytest.raises(RuntimeError, match="queue is down"):
        import_posts(db_conn, path, on_inserted=on_inserted, batch_size=2)
    assert ids(db_conn) == {}


def test_batches_and_ten_thousand_rows(db_conn: Conn, tmp_path: Path) -> None:
    records = [post(str(i), text=f"post {i} 🚀") for i in range(10_000)]
    assert load(db_conn, tmp_path, records).inserted == 10_000
    again = load(db_conn, tmp_path, records)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 10_000)
    assert len(unclassified(db_conn, limit=None)) == 10_000


def test_unknown_extension_is_refused(db_conn: Conn, tmp_path: Path) -> None:
    path = tmp_path / "posts.txt"
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(ValueError, match="expected one of"):
        import_posts(db_conn, path)


def test_sample_corpus_imports_idempotently(db_conn: Conn) -> None:
    sample = REPO_ROOT / "data" / "sample_posts.jsonl"
    if not sample.exists():
        pytest.skip("data/sample_posts.jsonl is not there yet")
    first = import_posts(db_conn, sample)
    assert first.inserted > 0
    again = import_posts(db_conn, sample)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, first.inserted)
