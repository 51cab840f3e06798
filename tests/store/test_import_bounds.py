"""A huge post or import: the importer reports what it cannot take and imports the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import ROOT
from tests.store.helpers import ids, incompressible, post, write_csv, write_jsonl
from volfefe.errors import FieldTooLong
from volfefe.store.importer import MAX_FIELD_CHARS, MAX_KEY_BYTES, MAX_RECORD_BYTES, import_posts
from volfefe.store.json_array import Broken, read_json_array
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


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_a_json_array_is_streamed_in_chunks_with_the_files_line_numbers(
    tmp_path: Path, chunk: int
) -> None:
    records: list[Any] = [post(str(n), text=f"post {n} 🚀 \\u00e9") for n in range(5)]
    records += [12345, [1, [2, {"x": None}]], "text", True]
    path = tmp_path / "a.json"
    path.write_text("\ufeff[\n" + ",\n  ".join(json.dumps(r) for r in records) + "\n]\n")
    read = list(read_json_array(path, int, 1 << 20, chunk=chunk))
    assert [value for _, value in read] == records
    assert [line for line, _ in read] == list(range(2, 2 + len(records)))
    minified = tmp_path / "m.json"
    minified.write_text(json.dumps(records, separators=(",", ":")))
    assert [v for _, v in read_json_array(minified, int, 1 << 20, chunk=chunk)] == records


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        ('[{"a": 1},\n {"a": }]', 2, "invalid JSON: Expecting value (column 8)"),
        ('[{"a": 1} {"a": 2}]', 1, "expected ',' or ']' after an element"),
        ('[{"a": 1},\n{"a": 2}', 2, "the array is not closed"),
        ('[{"a": 1}] extra', 1, "unexpected text after the JSON array"),
        ('{"a": 1}', 1, "expected a JSON array of objects"),
        ('[{"a": "' + "z" * 100 + '"}]', 1, "an element is longer than 50 characters"),
    ],
)
def test_a_broken_json_array_is_reported_where_it_breaks(
    tmp_path: Path, text: str, where: int, reason: str
) -> None:
    path = tmp_path / "b.json"
    path.write_text(text)
    *_, (line, last) = read_json_array(path, int, 50, chunk=4)
    assert isinstance(last, Broken) and last.reason.startswith(reason), last
    assert line == where


def test_a_key_field_over_the_index_limit_is_rejected_and_its_batch_stored(
    db_conn: Conn, tmp_path: Path
) -> None:
    fits = incompressible(MAX_KEY_BYTES - MAX_KEY_BYTES % 3, seed=1)
    over = incompressible(MAX_KEY_BYTES - MAX_KEY_BYTES % 3 + 3, seed=2)
    records = [
        post("1"),
        post(over),
        post("3", source=over),
        post(fits),
        post("5", author=incompressible(3000, seed=3), url="https://x.test/" + over * 2),
    ]
    report = import_posts(db_conn, write_jsonl(tmp_path / "p.jsonl", records))
    size = len(over.encode("utf-8"))
    limit = f"over the limit of {MAX_KEY_BYTES:,} bytes"
    assert report.rejected == [
        (2, f"external_id is {size:,} bytes long in UTF-8, {limit}"),
        (3, f"source is {size:,} bytes long in UTF-8, {limit}"),
    ]
    assert [type(error) for _, error in report.errors] == [FieldTooLong, FieldTooLong]
    assert (report.errors[0][1].field, report.errors[0][1].limit) == ("external_id", MAX_KEY_BYTES)
    assert report.inserted == 3
    assert sorted(ids(db_conn)) == sorted(["1", fits, "5"])


def test_the_docs_state_the_key_limit() -> None:
    data = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert f"`source` or `external_id` over {MAX_KEY_BYTES:,} bytes" in " ".join(data.split())
