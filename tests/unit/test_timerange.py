"""The dashboard's time ranges: presets, custom ranges, buckets and the refusals (422)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import QueryParams

from volfefe.web.errors import InvalidRequest
from volfefe.web.timerange import MAX_BUCKETS, ORIGIN, TimeRange, parse

NOW = datetime(2026, 5, 4, 10, 7, 31, tzinfo=UTC)


def at(query: str) -> TimeRange:
    return parse(QueryParams(query), now=NOW)


@pytest.mark.parametrize(
    ("preset", "bucket", "count"),
    [("15m", "30s", 30), ("1h", "1m", 60), ("24h", "15m", 96), ("7d", "3h", 56)],
)
def test_a_preset_ends_with_the_bucket_holding_now(preset: str, bucket: str, count: int) -> None:
    r = at(f"range={preset}")
    assert (r.bucket_text, r.count, r.preset) == (bucket, count, preset)
    assert r.since < NOW < r.until <= NOW + r.bucket
    assert r.start == r.since  # whole buckets only
    assert (r.since - ORIGIN) % r.bucket == timedelta(0)
    assert r.query() == {"range": preset}


def test_no_parameter_is_the_last_24_hours() -> None:
    assert at("").preset == "24h"
    assert at("range=&since=&until=").preset == "24h"  # a form's empty fields


def test_a_custom_range_keeps_its_edges_and_aligns_its_buckets() -> None:
    r = at("since=2025-05-01T10:07:00Z&until=2025-05-01T12:00")
    assert r.since == datetime(2025, 5, 1, 10, 7, tzinfo=UTC)
    assert r.until == datetime(2025, 5, 1, 12, tzinfo=UTC)
    assert r.bucket == timedelta(minutes=5)  # 113 min: 1 min would give more than 100
    assert r.start == datetime(2025, 5, 1, 10, 5, tzinfo=UTC)
    assert r.starts()[-1] == datetime(2025, 5, 1, 11, 55, tzinfo=UTC)
    assert r.count == len(r.starts()) == 23
    assert r.query() == {"since": "2025-05-01T10:07:00Z", "until": "2025-05-01T12:00:00Z"}


def test_an_eleven_month_gap_is_eleven_months_of_buckets() -> None:
    r = at("since=2024-06-01&until=2025-05-01")
    assert r.bucket == timedelta(days=7)
    assert r.count == 49  # the first week starts before June 1st
    assert r.starts()[0].weekday() == 0  # weeks start on Mondays


def test_since_alone_runs_to_now_and_until_alone_goes_back_a_day() -> None:
    assert at("since=2026-05-04T09:00").until == NOW
    assert at("until=2026-05-04").since == datetime(2026, 5, 3, tzinfo=UTC)


def test_an_explicit_bucket_is_kept_in_the_query() -> None:
    r = at("range=1h&bucket=5m")
    assert (r.bucket, r.count) == (timedelta(minutes=5), 12)
    assert r.query() == {"range": "1h", "bucket": "5m"}
    assert at("since=2025-01-01&until=2025-01-02&bucket=1d").count == 1


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("range=2h", "range must be one of 15m, 1h, 24h, 7d"),
        ("range=1h&since=2025-01-01", "either range or since/until"),
        ("since=2025-01-02&until=2025-01-01", "must be before until"),
        ("since=2025-01-01&until=2025-01-01", "must be before until"),
        ("since=yesterday", "since must be an ISO 8601"),
        ("bucket=0s", "bucket must be a whole number"),
        ("bucket=1w", "bucket must be a whole number"),
        ("bucket=1.5h", "bucket must be a whole number"),
        ("range=7d&bucket=1s", f"at most {MAX_BUCKETS}"),
        ("since=1000-01-01&until=9999-12-31", f"at most {MAX_BUCKETS}"),
        ("until=0001-01-01T01:00", "years 1 to 9999"),
        ("since=0001-01-01&until=0001-01-20&bucket=2d", "years 1 to 9999"),
    ],
)
def test_bad_input_is_an_invalid_request(query: str, says: str) -> None:
    with pytest.raises(InvalidRequest, match=says):
        at(query)
