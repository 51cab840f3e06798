"""A huge post or import: the importer reports what it cannot take and imports the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from tests.store.helpers import ids, post, write_csv, write_jsonl
from volfefe.store.importer import MAX_FIELD_CHARS, MAX_RECORD_BYTES, import_posts
from volfefe.store.posts import get_content

Conn = psycopg.Connection[Any]


def test_an_integer_of_5000_digits_is_reported_and_the_rest_imports(
    db_conn: Conn, tmp_path: Path
) -> None:
    huge = "9" * 5000
    lines = [
        json.dumps(post("1")),
        f'{{"source": "x", "external_id": {huge}, "text": "big id"}}',
        f'{{"source": "x", "external_id": "3", "published_at": {huge}}}',
        json.dumps(post("4")),
    ]
    report = import_posts(db_conn, write_jsonl(tmp_path / "p.jsonl", lines))
    assert report.inserted == 2
    assert [line for line, _ in report.rejected] == [2, 3]
    assert "a number of 5,000 digits" in report.rejected[0][1]
    array = tmp_path / "p.json"
    array.write_text("[" + ",".join([lines[1], json.dumps(post("5"))]) + "]", encoding="utf-8")
    report = import_posts(db_conn, array)
    assert (report.inserted, len(report.rejected)) == (1, 1), report


def test_a_csv_field_over_128_kib_is_imported_and_an_over_long_one_reported(
    db_conn: Conn, tmp_path: Path
) -> None:
    big = "Tariffs " * (200 * 1024 // 8)  # 200 KiB, over Python's default csv field limit
    too_big = "x" * (MAX_FIELD_CHARS + 1)
    records = [post("1", big), post("2", too_big), post("3", "after")]
    report = import_posts(db_conn, write_csv(tmp_path / "p.csv", records))
    assert report.inserted == 2, report.rejected
    [(line, reason)] = report.rejected
    assert line == 3  # the header is line 1
    assert "text is 1,048,577 characters long" in reason
    assert get_content(db_conn, ids(db_conn)["1"]).text == big
    assert "3" in ids(db_conn)


def test_a_json_line_over_the_record_limit_is_skipped_without_reading_it_whole(
    db_conn: Conn, tmp_path: Path
) -> None:
    path = tmp_path / "p.jsonl"
    with path.open("w", encoding="utf-8") as f:
        f.write(json.dumps(post("1")) + "\n")
        f.write('{"text": "' + "y" * (MAX_RECORD_BYTES + 10) + '"}\n')
        f.write(json.dumps(post("3")) + "\n")
    report = import_posts(db_conn, path)
    assert report.inserted == 2
    assert report.rejected == [(2, f"the line is longer than {MAX_RECORD_BYTES:,} bytes")]
