"""Import posts from JSON Lines, a JSON array or CSV into `contents`, idempotently.

```
file --read--> (line, record) --check--> Post --dedupe--> batch of 1000 --upsert--> counts
                    | bad                  | bad     | same key, other content
                    +-----------> ImportReport.rejected (line, reason) <-----------+
```

A post is keyed by (source, external_id). Each batch is one INSERT ... ON CONFLICT statement in
its own transaction; batches of concurrent imports are serialised by an advisory lock, so the
"did the text change?" comparison always sees the latest committed row.

Bounds: a field over 1 MiB of characters, a `source` or `external_id` over `MAX_KEY_BYTES`
(they are indexed), a number of more than 4,300 digits or a JSON line over 16 MiB rejects its
row (reported; the import goes on); a CSV field over 16 MiB stops the reading of the file
there (reported). Memory holds one batch of posts, a 16-byte digest per
post key and, for a JSON array, the element being read.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from volfefe.errors import FieldTooLong, InvalidPost
from volfefe.store.json_array import Broken, read_json_array

BATCH_SIZE = 1000
MAX_FIELD_CHARS = 1 << 20  # a longer field rejects its row (1 MiB of characters)
# source and external_id are in btree indexes (unique (source_id, external_id), sources.name),
# whose rows PostgreSQL limits to 2,704 bytes (a third of a page); a longer key would fail its
# whole batch. 2,000 bytes leaves room for the row's header and the source id, compressed or not.
MAX_KEY_BYTES = 2000
MAX_RECORD_BYTES = 16 << 20  # a longer JSON line or CSV field is not even parsed (16 MiB)
MAX_INT_DIGITS = 4300  # Python's own limit for int(str); longer numbers are rejected
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
        -- a new text is a new chance: its quarantine (poison) is lifted
        quarantined_at = CASE WHEN c.text = excluded.text THEN c.quarantined_at END,
        quarantine_reason = CASE WHEN c.text = excluded.text THEN c.quarantine_reason END,
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
    """What an import did: counts of posts, and the rejected rows as (line, error).

    >>> report = ImportReport(inserted=2, errors=[(3, InvalidPost("missing external_id"))])
    >>> report.summary(), report.rejected
    ('inserted 2, updated 0, unchanged 0, rejected 1', [(3, 'missing external_id')])
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, InvalidPost]] = field(default_factory=list)

    @property
    def rejected(self) -> list[tuple[int, str]]:
        """The rejected rows as (line, reason)."""
        return [(line, str(error)) for line, error in self.errors]

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


@dataclass(frozen=True, slots=True)
class _BigNumber:
    """A JSON number with more digits than Python converts; the row is rejected."""

    digits: int


def _parse_int(text: str) -> int | _BigNumber:
    return _BigNumber(len(text)) if len(text) > MAX_INT_DIGITS else int(text)


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
    is deleted, `classified` reset and any quarantine lifted, so it will be classified
    again. Empty text is stored but never queued for classification. Bad rows are reported
    with their line number (for CSV, the file line where the record starts) and the rest is
    imported.

    `on_inserted(cur, ids)` runs inside each batch's transaction with the ids of the posts
    that now need classifying (inserted, or text changed, and not empty), so a job queue can
    enqueue them atomically with the import. An unknown file extension raises ValueError.

    >>> import_posts(conn, Path("posts.jsonl")).summary()  # doctest: +SKIP
    'inserted 167, updated 0, unchanged 0, rejected 0'
    """
    read = _READERS.get(path.suffix.lower())
    if read is None:
        raise ValueError(f"cannot import {path.name}: expected one of {', '.join(SUFFIXES)}")
    return import_records(conn, read(path), on_inserted=on_inserted, batch_size=batch_size)


def import_records(
    conn: psycopg.Connection[Any],
    records: Iterable[tuple[int, object]],
    *,
    on_inserted: OnInserted | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """`import_posts` over records already parsed, as `(position, record)` pairs: the same
    rules, and rejected rows reported with their position (the HTTP API passes list indexes).

    >>> import_records(conn, enumerate([{"source": "x"}])).rejected  # doctest: +SKIP
    [(0, 'missing external_id')]
    """
    report = ImportReport()
    # Only a digest per post is kept for the duplicate check, so memory stays small however
    # big the file: the posts themselves are written and dropped batch by batch.
    seen: dict[tuple[str, str], tuple[int, bytes]] = {}
    source_ids: dict[str, int] = {}
    batch: list[Post] = []
    for line, record in records:
        try:
            post = to_post(record)
        except InvalidPost as err:
            report.errors.append((line, err))
            continue
        key = (post.source, post.external_id)
        first = seen.get(key)
        digest = _digest(post)
        if first is not None:
            # One statement cannot upsert a row twice, and the file should say one thing.
            if first[1] == digest:
                report.unchanged += 1
            else:
                report.errors.append(
                    (
                        line,
                        InvalidPost(
                            f"same source and external_id as line {first[0]}, other content"
                        ),
                    )
                )
            continue
        seen[key] = (line, digest)
        batch.append(post)
        if len(batch) >= batch_size:
            _upsert(conn, batch, report, source_ids, on_inserted)
            batch = []
    if batch:
        _upsert(conn, batch, report, source_ids, on_inserted)
    return report


def to_post(record: object) -> Post:
    """Check and normalise one parsed record, or raise `InvalidPost` with the reason.

    >>> to_post({"source": "x", "external_id": 7, "published_at": "2025-01-01T00:00:00Z"})
    Post(source='x', external_id='7', author=None, text='', url=None, published_at=datetime.datetime(2025, 1, 1, 0, 0, tzinfo=datetime.timezone.utc))
    >>> to_post({"source": "x", "external_id": "1", "published_at": "soon"})
    Traceback (most recent call last):
    ...
    volfefe.errors.InvalidPost: published_at is not a date: 'soon'
    """  # noqa: E501
    if isinstance(record, _Bad):
        raise InvalidPost(record.reason)
    if not isinstance(record, dict):
        raise InvalidPost(f"expected an object, got {_json_type(record)}")
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
    """A key field (source, external_id): present, not blank (stored stripped), and short
    enough for its index."""
    value = (_string(record, name) or "").strip()
    if not value:
        raise InvalidPost(f"missing {name}")
    size = len(value.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise FieldTooLong(name, size, MAX_KEY_BYTES, "bytes")
    return value


def _string(record: dict[str, Any], name: str) -> str | None:
    """An optional string field that PostgreSQL can store as text."""
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidPost(f"{name} must be a string, got {_json_type(value)}")
    if len(value) > MAX_FIELD_CHARS:
        raise FieldTooLong(name, len(value), MAX_FIELD_CHARS, "characters")
    if "\x00" in value:
        raise InvalidPost(f"{name} contains a NUL byte")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPost(f"{name} is not valid UTF-8") from None
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
    raise InvalidPost(f"published_at is not a date: {value!r}")


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
    if isinstance(value, _BigNumber):
        return f"a number of {value.digits:,} digits"
    return names.get(type(value), type(value).__name__)


def _read_json_lines(path: Path) -> Iterator[tuple[int, object]]:
    """One record per non-blank line."""
    with path.open("rb") as f:
        number = 0
        while raw := f.readline(MAX_RECORD_BYTES + 1):
            number += 1
            if len(raw) > MAX_RECORD_BYTES and not raw.endswith(b"\n"):
                while (rest := f.readline(MAX_RECORD_BYTES)) and not rest.endswith(b"\n"):
                    pass  # skip the rest of the over-long line without holding it
                yield number, _Bad(f"the line is longer than {MAX_RECORD_BYTES:,} bytes")
                continue
            # surrogateescape keeps bad bytes as lone surrogates; _string() then rejects them.
            line = raw.decode("utf-8", "surrogateescape")
            if number == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                continue
            try:
                yield number, json.loads(line, parse_int=_parse_int)
            except (json.JSONDecodeError, RecursionError) as err:
                yield number, _Bad(f"invalid JSON: {_json_error(err)}")


def _read_json_array(path: Path) -> Iterator[tuple[int, object]]:
    """Each element of a top-level array, with the line where it starts, streamed
    (`volfefe.store.json_array`): everything before a syntax error is still imported; after
    one, the position of the next element is unknown and reading stops."""
    for line, value in read_json_array(path, _parse_int, MAX_RECORD_BYTES):
        yield line, _Bad(value.reason) if isinstance(value, Broken) else value


def _read_csv(path: Path) -> Iterator[tuple[int, object]]:
    """Rows of a CSV file with a header line, keyed by the header's names."""
    csv.field_size_limit(MAX_RECORD_BYTES)  # fields past MAX_FIELD_CHARS are rejected by row
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


def _digest(post: Post) -> bytes:
    """A short fingerprint of a post, for the duplicate check."""
    fields = (post.author, post.text, post.url, post.published_at)
    return hashlib.blake2b(repr(fields).encode("utf-8", "surrogatepass"), digest_size=16).digest()


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
