"""`GET /api/v1/index` against numbers computed here from rows inserted by plain SQL."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.web.conftest import Serve, Served

pytestmark = pytest.mark.db

SIGN = {"positive": 1, "negative": -1, "neutral": 0}
Row = tuple[str, datetime, str, float]  # source, published_at, sentiment, confidence


@pytest.fixture(scope="module")
def server(serve: Serve, web_database_url: str) -> Served:
    """One server for the tests of this module."""
    return serve(web_database_url)


def insert(conn: psycopg.Connection[Any], rows: Iterable[Row]) -> None:
    """Posts and their classifications, straight into the tables."""
    for source, published_at, sentiment, confidence in rows:
        conn.execute(
            "INSERT INTO sources (name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (source,)
        )
        conn.execute(
            """
            WITH post AS (
                INSERT INTO contents (source_id, external_id, text, published_at, classified)
                SELECT id, %s, 'a post', %s, true FROM sources WHERE name = %s
                RETURNING id
            )
            INSERT INTO classifications (content_id, sentiment, confidence, model_version)
            SELECT id, %s, %s, 'm@1' FROM post
            """,
            (uuid.uuid4().hex, published_at, source, sentiment, confidence),
        )


def expected(rows: list[Row], start: datetime, bucket: timedelta, n: int) -> list[dict[str, Any]]:
    """The buckets as the definition says, computed in Python."""
    out = []
    for i in range(n):
        lo = start + i * bucket
        inside = [r for r in rows if lo <= r[1] < lo + bucket]
        weighted = sum(c * SIGN[s] for _, _, s, c in inside)
        counts = {s: sum(1 for r in inside if r[2] == s) for s in SIGN}
        out.append(
            {
                "start": lo.isoformat().replace("+00:00", "Z"),
                "posts": len(inside),
                "index": weighted / len(inside) if inside else None,
                **counts,
            }
        )
    return out


def same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """Equal bucket by bucket (the index to 1e-6: the API rounds it)."""
    assert [{**b, "index": None} for b in got] == [{**b, "index": None} for b in want]
    for g, w in zip(got, want, strict=True):
        assert g["index"] == (None if w["index"] is None else pytest.approx(w["index"], abs=1e-6))


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_hourly_buckets_with_a_gap_and_a_source_filter(
    server: Served, conn: psycopg.Connection[Any]
) -> None:
    a, b = "a" + uuid.uuid4().hex[:8], "b" + uuid.uuid4().hex[:8]
    rows: list[Row] = [
        (a, at(2021, 3, 1, 10, 5), "positive", 0.9),
        (a, at(2021, 3, 1, 10, 55), "negative", 0.6),
        (b, at(2021, 3, 1, 10, 30), "positive", 0.8),
        (a, at(2021, 3, 1, 11, 0), "neutral", 0.7),  # on the boundary: the 11:00 bucket
        # 12:00 and 13:00 have no post
        (a, at(2021, 3, 1, 14, 59), "negative", 0.95),
        (b, at(2021, 3, 1, 16, 0), "positive", 0.5),  # at until: outside
        (a, at(2021, 3, 1, 9, 59), "positive", 0.5),  # before since: outside
    ]
    insert(conn, rows)
    window = {"since": "2021-03-01T10:00:00Z", "until": "2021-03-01T16:00:00Z", "bucket": "1h"}
    with server.client() as client:
        body = client.get("/api/v1/index", params=window).json()
        only_a = client.get("/api/v1/index", params={**window, "source": a}).json()
        nobody = client.get("/api/v1/index", params={**window, "source": "nobody"}).json()
    assert (body["since"], body["until"], body["bucket"], body["bucket_seconds"]) == (
        "2021-03-01T10:00:00Z",
        "2021-03-01T16:00:00Z",
        "1h",
        3600,
    )
    same(body["buckets"], expected(rows, at(2021, 3, 1, 10), timedelta(hours=1), 6))
    assert [b["posts"] for b in body["buckets"]] == [3, 1, 0, 0, 1, 0]
    assert body["buckets"][0]["index"] == pytest.approx((0.9 - 0.6 + 0.8) / 3, abs=1e-6)
    assert body["buckets"][2]["index"] is None
    mine = [r for r in rows if r[0] == a]
    same(only_a["buckets"], expected(mine, at(2021, 3, 1, 10), timedelta(hours=1), 6))
    assert only_a["source"] == a
    assert [b["posts"] for b in nobody["buckets"]] == [0] * 6


def test_an_unaligned_range_and_a_chosen_bucket(
    server: Served, conn: psycopg.Connection[Any]
) -> None:
    source = "c" + uuid.uuid4().hex[:8]
    rows: list[Row] = [
        (source, at(2022, 1, 3, 0, 1), "positive", 1.0),  # before since, in the first bucket
        (source, at(2022, 1, 5, 12), "negative", 0.4),
        (source, at(2022, 1, 5, 13), "negative", 0.8),
        (source, at(2022, 1, 9, 23), "positive", 0.6),
    ]
    insert(conn, rows)
    with server.client() as client:
        body = client.get(
            "/api/v1/index",
            params={"since": "2022-01-03T06:00", "until": "2022-01-10", "source": source},
        ).json()
    assert body["bucket"] == "3h"  # 162 h: 1 h would be more than 100 buckets
    counted = [r for r in rows if r[1] >= at(2022, 1, 3, 6)]
    want = expected(counted, at(2022, 1, 3, 6), timedelta(hours=3), 54)
    same(body["buckets"], want)
    assert sum(b["posts"] for b in body["buckets"]) == 3


def test_csv_has_the_same_numbers(server: Served, conn: psycopg.Connection[Any]) -> None:
    source = "d" + uuid.uuid4().hex[:8]
    rows: list[Row] = [
        (source, at(2023, 7, 1, 0, 10), "positive", 0.75),
        (source, at(2023, 7, 1, 0, 20), "neutral", 0.5),
        (source, at(2023, 7, 1, 1, 40), "negative", 0.25),
    ]
    insert(conn, rows)
    query = {"since": "2023-07-01", "until": "2023-07-01T02:00", "bucket": "30m", "source": source}
    with server.client() as client:
        response = client.get("/api/v1/index", params={**query, "format": "csv"})
        as_json = client.get("/api/v1/index", params=query).json()
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert list(table[0]) == ["start", "posts", "index", "positive", "negative", "neutral"]
    assert [(r["start"], r["posts"], r["index"]) for r in table] == [
        ("2023-07-01T00:00:00Z", "2", "0.375"),
        ("2023-07-01T00:30:00Z", "0", ""),
        ("2023-07-01T01:00:00Z", "0", ""),
        ("2023-07-01T01:30:00Z", "1", "-0.25"),
    ]
    assert [int(r["posts"]) for r in table] == [b["posts"] for b in as_json["buckets"]]


def test_a_preset_range_ends_now(server: Served, conn: psycopg.Connection[Any]) -> None:
    source = "e" + uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    insert(conn, [(source, now - timedelta(minutes=2), "positive", 0.5)])
    with server.client() as client:
        body = client.get("/api/v1/index", params={"range": "15m", "source": source}).json()
    assert body["bucket"] == "30s" and len(body["buckets"]) == 30
    assert sum(b["posts"] for b in body["buckets"]) == 1
    assert datetime.fromisoformat(body["until"]) >= now


@pytest.mark.parametrize(
    "query",
    [
        {"range": "2h"},
        {"range": "1h", "since": "2024-01-01"},
        {"since": "2024-01-02", "until": "2024-01-01"},
        {"since": "not a time"},
        {"bucket": "1w"},
        {"range": "7d", "bucket": "1s"},
        {"format": "xml"},
        {"source": "a\x00b"},
    ],
)
def test_bad_parameters_are_a_named_422(server: Served, query: dict[str, str]) -> None:
    with server.client() as client:
        response = client.get("/api/v1/index", params=query)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["type"] == "InvalidRequest"
