"""Import posts from JSON Lines, a JSON array or CSV into `contents`, idempotently.

```
file --read--> (line, record) --check--> Post --dedupe--> batch of 1000 --upsert--> counts
                    | bad                  | bad     | same key, other content
                    +-----------> ImportReport.rejected (line, reason) <-----------+
```

A post is keyed by (source, external_id). Each batch is one INSERT ... ON CONFLICT statement in
its own transaction; batches of concurrent imports are serialised by an advisory lock, so the
"did the text change?" comparison always sees the latest committed row.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

BATCH_SIZE = 1000
# Any fixed bigint; this one spells "volfimp".
IMPORT_LOCK = 0x766F6C66696D70
SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv")
FIELDS = ("source", "external_id", "author", "text", "published_at", "url")
TWITTER_TIME = "%a %b %d %H:%M:%S %z %Y"  # "Wed Oct 10 20:19:24 +0000 2018"

OnInserted = Callable[[psycopg.Cursor[Any], list[int]], object]

LOCK = "SELECT pg_advisory_xact_lock(%(key)s)"
INSERT_SOURCES = """
INSERT INTO sources (name) SELECT unnest(%(names)s::text[]) ON CONFLICT (name) DO NOTHING
"""
SOURCE_IDS = "SELECT id, name FROM sources WHERE name = ANY(%(names)s::text[])"
# `before` sees the rows as they were when the statement started (one snapshot for all CTEs),
# which is how an update can tell whether the text changed. xmax = 0 marks a fresh insert.
UPSERT = """
WITH input AS (
    SELECT *
    FROM unnest(%(source_ids)s::bigint[], %(external_ids)s::text[], %(authors)s::text[],
                %(texts)s::text[], %(urls)s::text[], %(published_ats)s::timestamptz[])
         AS t(source_id, external_id, author, text, url, published_at)
),
before AS (
    SELECT c.id, c.text
    FROM contents AS c
    JOIN input AS i USING (source_id, external_id)
),
upserted AS (
    INSERT INTO contents AS c (source_id, external_id, author, text, url, published_at)
    SELECT source_id, external_id, author, text, url, published_at FROM input
    ON CONFLICT (source_id, external_id) DO UPDATE
    SET author = excluded.author,
        text = excluded.text,
        url = excluded.url,
        published_at = excluded.published_at,
        classified = c.classified AND c.text = excluded.text,
        updated_at = now()
    WHERE (c.author, c.text, c.url, c.published_at)
          IS DISTINCT FROM (excluded.author, excluded.text, excluded.url, excluded.published_at)
    RETURNING c.id, c.text, c.has_text, (c.xmax = 0) AS inserted
),
changed AS (
    SELECT u.id, u.has_text, u.inserted, b.text IS DISTINCT FROM u.text AS text_changed
    FROM upserted AS u
    LEFT JOIN before AS b USING (id)
),
dropped AS (
    DELETE FROM classifications
    WHERE content_id IN (SELECT id FROM changed WHERE text_changed AND NOT inserted)
)
SELECT id, has_text, inserted, text_changed FROM changed
"""


@dataclass
class ImportReport:
    """What an import did: counts of posts, and the rejected rows as (line, reason).

    >>> ImportReport(inserted=2, rejected=[(3, "missing external_id")]).summary()
    'inserted 2, updated 0, unchanged 0, rejected 1'
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        """The four counts on one line."""
        return (
            f"inserted {self.inserted}, updated {self.updated}, "
            f"unchanged {self.unchanged}, rejected {len(self.rejected)}"
        )


@dataclass(frozen=True, slots=True)
class Post:
    """One valid row of an import file, normalised (empty author/url become None).

    >>> Post("x", "1", None, "", None, None).text
    ''
    """

    source: str
    external_id: str
    author: str | None
    text: str
    url: str | None
    published_at: datetime | None


class RowError(ValueError):
    """A row cannot be imported; the message is the reason shown to the user."""


@dataclass(frozen=True, slots=True)
class _Bad:
    """A record the reader could not even parse."""

    reason: str


def import_posts(
    conn: psycopg.Connection[Any],
    path: Path,
    *,
    on_inserted: OnInserted | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Insert new posts and update edited ones from `path` (.jsonl/.ndjson, .json or .csv).

    Fields: source, external_id (both required), author, text, published_at (ISO 8601, Unix
    seconds or Twitter's format; no zone means UTC), url; other fields are ignored.
    Re-importing the same file changes nothing (all `unchanged`). A post whose author, url,
    published_at or text differs is updated; if its **text** changed, its old classification
    is deleted and `classified` reset, so it will be classified again. Empty text is stored
    but never queued for classification. Bad rows are reported with their line number (for
    CSV, the file line where the record starts) and the rest is imported.

    `on_inserted(cur, ids)` runs inside each batch's transaction with the ids of the posts
    that now need classifying (inserted, or text changed, and not empty), so a job queue can
    enqueue them atomically with the import. An unknown file extension raises ValueError.

    >>> import_posts(conn, Path("posts.jsonl")).summary()  # doctest: +SKIP
    'inserted 167, updated 0, unchanged 0, rejected 0'
    """
    read = _READERS.get(path.suffix.lower())
    if read is None:
        raise ValueError(f"cannot import {path.name}: expected one of {', '.join(SUFFIXES)}")
    report = ImportReport()
    seen: dict[tuple[str, str], tuple[int, Post]] = {}
    source_ids: dict[str, int] = {}
    batch: list[Post] = []
    for line, record in read(path):
        try:
            post = to_post(record)
        except RowError as err:
            report.rejected.append((line, str(err)))
            continue
        key = (post.source, post.external_id)
        first = seen.get(key)
        if first is not None:
            # One statement cannot upsert a row twice, and the file should say one thing.
            if first[1] == post:
                report.unchanged += 1
            else:
                report.rejected.append(
                    (line, f"same source and external_id as line {first[0]}, other content")
                )
            continue
        seen[key] = (line, post)
        batch.append(post)
        if len(batch) >= batch_size:
            _upsert(conn, batch, report, source_ids, on_inserted)
            batch = []
    if batch:
        _upsert(conn, batch, report, source_ids, on_inserted)
    return report


def to_post(record: object) -> Post:
    """Check and normalise one parsed record, or raise `RowError` with the reason.

    >>> to_post({"source": "x", "external_id": 7, "published_at": "2025-01-01T00:00:00Z"})
    Post(source='x', external_id='7', author=None, text='', url=None, published_at=datetime.datetime(2025, 1, 1, 0, 0, tzinfo=datetime.timezone.utc))
    >>> to_post({"source": "x", "external_id": "1", "published_at": "soon"})
    Traceback (most recent call last):
    ...
    volfefe.store.importer.RowError: published_at is not a date: 'soon'
    """  # noqa: E501
    if isinstance(record, _Bad):
        raise RowError(record.reason)
    if not isinstance(record, dict):
        raise RowError(f"expected an object, got {_json_type(record)}")
    external_id = record.get("external_id")
    if isinstance(external_id, int) and not isinstance(external_id, bool):
        external_id = str(external_id)
    return Post(
        source=_required(record, "source"),
        external_id=_required({"external_id": external_id}, "external_id"),
        author=_string(record, "author") or None,
        text=_string(record, "text") or "",
        url=_string(record, "url") or None,
        published_at=_parse_time(record.get("published_at")),
    )


def _upsert(
    conn: psycopg.Connection[Any],
    batch: list[Post],
    report: ImportReport,
    source_ids: dict[str, int],
    on_inserted: OnInserted | None,
) -> None:
    """Write one batch in one transaction and add its outcome to `report`."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(LOCK, {"key": IMPORT_LOCK})
        missing = sorted({post.source for post in batch} - source_ids.keys())
        if missing:
            cur.execute(INSERT_SOURCES, {"names": missing})
            for row in cur.execute(SOURCE_IDS, {"names": missing}):
                source_ids[row["name"]] = row["id"]
        params = {
            "source_ids": [source_ids[post.source] for post in batch],
            "external_ids": [post.external_id for post in batch],
            "authors": [post.author for post in batch],
            "texts": [post.text for post in batch],
            "urls": [post.url for post in batch],
            "published_ats": [post.published_at for post in batch],
        }
        rows = cur.execute(UPSERT, params).fetchall()
        inserted = sum(1 for row in rows if row["inserted"])
        report.inserted += inserted
        report.updated += len(rows) - inserted
        report.unchanged += len(batch) - len(rows)
        to_classify = sorted(row["id"] for row in rows if row["has_text"] and row["text_changed"])
        if to_classify and on_inserted is not None:
            on_inserted(cur, to_classify)


def _required(record: dict[str, Any], name: str) -> str:
    """A string field that must be present and not blank (stored stripped)."""
    value = (_string(record, name) or "").strip()
    if not value:
        raise RowError(f"missing {name}")
    return value


def _string(record: dict[str, Any], name: str) -> str | None:
    """An optional string field that PostgreSQL can store as text."""
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RowError(f"{name} must be a string, got {_json_type(value)}")
    if "\x00" in value:
        raise RowError(f"{name} contains a NUL byte")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RowError(f"{name} is not valid UTF-8") from None
    return value


UNIX_SECONDS = re.compile(r"-?\d{9,11}(?:\.\d+)?")  # 1973..5138: never a year or a date


def _parse_time(value: object) -> datetime | None:
    """ISO 8601, Twitter's format or Unix seconds, as an aware datetime; None when absent."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str) and UNIX_SECONDS.fullmatch(value.strip()):
            return datetime.fromtimestamp(float(value), UTC)  # CSV has no numbers, only text
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                parsed = datetime.strptime(value.strip(), TWITTER_TIME)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        pass  # reported below, with the value
    raise RowError(f"published_at is not a date: {value!r}")


def _json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages."""
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _read_json_lines(path: Path) -> Iterator[tuple[int, object]]:
    """One record per non-blank line."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            # surrogateescape keeps bad bytes as lone surrogates; _string() then rejects them.
            line = raw.decode("utf-8", "surrogateescape")
            if number == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except (json.JSONDecodeError, RecursionError) as err:
                yield number, _Bad(f"invalid JSON: {_json_error(err)}")


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def _read_json_array(path: Path) -> Iterator[tuple[int, object]]:
    """Each element of a top-level array, with the line where it starts.

    Elements are decoded one at a time, so everything before a syntax error is still
    imported; after one, the position of the next element is unknown and reading stops.
    """
    text = path.read_bytes().decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    decoder = json.JSONDecoder()

    def skip(pos: int) -> int:
        match = _JSON_SPACE.match(text, pos)
        return match.end() if match else pos

    def line_at(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    pos = skip(0)
    if not text.startswith("[", pos):
        yield line_at(pos), _Bad("expected a JSON array of objects")
        return
    pos = skip(pos + 1)
    line, counted = 1, 0
    while not text.startswith("]", pos):
        line, counted = line + text.count("\n", counted, pos), pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError) as err:
            where = err.lineno if isinstance(err, json.JSONDecodeError) else line
            yield where, _Bad(f"invalid JSON: {_json_error(err)}; the rest was not read")
            return
        yield line, value
        pos = skip(end)
        if text.startswith(",", pos):
            pos = skip(pos + 1)
        elif not text.startswith("]", pos):
            yield line_at(pos), _Bad("expected ',' or ']' after an element; the rest was not read")
            return
    if skip(pos + 1) != len(text):
        yield line_at(skip(pos + 1)), _Bad("unexpected text after the JSON array")


def _read_csv(path: Path) -> Iterator[tuple[int, object]]:
    """Rows of a CSV file with a header line, keyed by the header's names."""
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f)
        try:
            header = [name.strip() for name in next(reader, [])]
        except csv.Error as err:
            yield 1, _Bad(f"unreadable CSV header: {err}")
            return
        missing = [name for name in ("source", "external_id") if name not in header]
        if missing:
            yield 1, _Bad(f"the CSV header has no {' or '.join(missing)} column")
            return
        previous = reader.line_num
        while True:
            start = previous + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                yield start, _Bad(f"unreadable CSV: {err}; the rest was not read")
                return
            previous = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                yield start, _Bad(f"expected {len(header)} fields, got {len(row)}")
                continue
            yield (
                start,
                {name: value for name, value in zip(header, row, strict=True) if name in FIELDS},
            )


def _json_error(err: json.JSONDecodeError | RecursionError) -> str:
    """A short description of a JSON syntax error."""
    if isinstance(err, RecursionError):
        return "nested too deeply"
    return f"{err.msg} (column {err.colno})"


_READERS: dict[str, Callable[[Path], Iterator[tuple[int, object]]]] = {
    ".jsonl": _read_json_lines,
    ".ndjson": _read_json_lines,
    ".json": _read_json_array,
    ".csv": _read_csv,
}
