"""The time range a chart or a series covers, read from the query string, and its buckets.

```
?range=15m|1h|24h|7d       a preset ending now: until = the end of the bucket holding now,
                           since = until - span, so every bucket is whole and aligned
?since=T&until=T           a custom range (ISO 8601, no zone = UTC; until defaults to now,
                           since to until - 24 h); posts with since <= published_at < until
&bucket=30s|5m|1h|1d...    optional: the bucket width (<whole number><s|m|h|d>); without it
                           the smallest of BUCKET_STEPS giving at most TARGET_BUCKETS
```
Bucket starts are aligned to ORIGIN (a Monday, 00:00 UTC), so a 1 h bucket starts on the
hour and a 7 d bucket on a Monday. The first bucket starts at `start`, at or before `since`;
with a custom range the first and last buckets may be cut by `since` and `until`. No range
has more than MAX_BUCKETS buckets. Bad input raises `InvalidRequest` (HTTP 422).

>>> from starlette.datastructures import QueryParams
>>> now = datetime(2026, 5, 4, 10, 7, 30, tzinfo=UTC)
>>> r = parse(QueryParams("range=1h"), now=now)
>>> r.since.isoformat(), r.until.isoformat(), r.bucket, r.count
('2026-05-04T09:08:00+00:00', '2026-05-04T10:08:00+00:00', datetime.timedelta(seconds=60), 60)
>>> r.query()
{'range': '1h'}
>>> parse(QueryParams("since=2026-05-01&until=2026-05-08"), now=now).bucket_text
'3h'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from starlette.datastructures import QueryParams

from volfefe.web import params
from volfefe.web.errors import InvalidRequest

PRESETS: dict[str, timedelta] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
DEFAULT = "24h"
BUCKET_STEPS = tuple(
    timedelta(seconds=s)
    for s in (
        30,
        60,
        5 * 60,
        15 * 60,
        30 * 60,
        3600,
        3 * 3600,
        6 * 3600,
        12 * 3600,
        86400,
        7 * 86400,
        28 * 86400,
    )
)
TARGET_BUCKETS = 100  # a chosen bucket gives at most this many (a bar is then >= 7 px wide)
MAX_BUCKETS = 1000  # an explicit bucket may give up to this many
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday: weekly buckets start on Mondays
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
BUCKET_PATTERN = r"^[1-9][0-9]{0,6}[smhd]$"


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Posts with `since <= published_at < until`, counted in buckets of `bucket` whose
    starts are `start`, `start + bucket`, ... (`count` of them, the last one before `until`).

    `preset` is the `range` parameter it came from (None for since/until); `explicit_bucket`
    says whether the bucket was asked for (and so belongs in the URL).
    """

    since: datetime
    until: datetime
    bucket: timedelta
    preset: str | None = None
    explicit_bucket: bool = False

    @property
    def start(self) -> datetime:
        """The start of the first bucket: `since` rounded down to a bucket boundary."""
        return floor(self.since, self.bucket)

    @property
    def count(self) -> int:
        """How many buckets cover the range."""
        return -(-(self.until - self.start) // self.bucket)

    @property
    def span(self) -> timedelta:
        """`until - since`."""
        return self.until - self.since

    @property
    def bucket_text(self) -> str:
        """The bucket as the query string writes it (`30s`, `15m`, `6h`, `1d`)."""
        return duration_text(self.bucket)

    def starts(self) -> list[datetime]:
        """Every bucket's start, oldest first."""
        return [self.start + i * self.bucket for i in range(self.count)]

    def query(self) -> dict[str, str]:
        """The query parameters that give this range again (for links and the URL)."""
        if self.preset is not None:
            out = {"range": self.preset}
        else:
            out = {"since": iso(self.since), "until": iso(self.until)}
        if self.explicit_bucket:
            out["bucket"] = self.bucket_text
        return out


def parse(query: QueryParams, *, now: datetime | None = None, default: str = DEFAULT) -> TimeRange:
    """The range of `?range=` or `?since=&until=` (neither: the `default` preset), with the
    bucket of `?bucket=` or one chosen for it; InvalidRequest for bad or conflicting input."""
    now = now or datetime.now(UTC)
    preset = params.choice(query, "range", tuple(PRESETS))
    since = params.timestamp(query, "since")
    until = params.timestamp(query, "until")
    bucket = parse_bucket(params.text(query, "bucket"))
    if preset is not None and (since is not None or until is not None):
        raise InvalidRequest("give either range or since/until, not both")
    try:
        if since is None and until is None:
            preset = preset or default
            step = bucket or choose_bucket(PRESETS[preset])
            until = floor(now, step) + step
            since = until - PRESETS[preset]
            return _checked(TimeRange(since, until, step, preset, bucket is not None))
        until = until or now
        since = since or until - PRESETS[DEFAULT]
        if since >= until:
            raise InvalidRequest(f"since ({iso(since)}) must be before until ({iso(until)})")
        step = bucket or choose_bucket(until - since)
        return _checked(TimeRange(since, until, step, None, bucket is not None))
    except OverflowError:
        raise InvalidRequest("the range reaches past the years 1 to 9999") from None


def choose_bucket(span: timedelta) -> timedelta:
    """The smallest of BUCKET_STEPS that cuts `span` into at most TARGET_BUCKETS (the
    largest step for a longer span; `parse` then refuses it past MAX_BUCKETS).

    >>> [duration_text(choose_bucket(PRESETS[p])) for p in PRESETS]
    ['30s', '1m', '15m', '3h']
    """
    for step in BUCKET_STEPS:
        if span / step <= TARGET_BUCKETS:
            return step
    return BUCKET_STEPS[-1]


def parse_bucket(text: str | None) -> timedelta | None:
    """`30s`, `15m`, `6h`, `1d` as a timedelta (None when absent).

    >>> parse_bucket("15m")
    datetime.timedelta(seconds=900)
    """
    if text is None:
        return None
    if not re.fullmatch(BUCKET_PATTERN, text):
        raise InvalidRequest(
            f"bucket must be a whole number and a unit s, m, h or d (like 30s, 15m, 1d), "
            f"got {text!r}"
        )
    return timedelta(seconds=int(text[:-1]) * UNITS[text[-1]])


def floor(moment: datetime, step: timedelta) -> datetime:
    """The bucket boundary at or before `moment` (boundaries are ORIGIN + k * step).

    >>> floor(datetime(2026, 5, 4, 10, 7, tzinfo=UTC), timedelta(minutes=15)).isoformat()
    '2026-05-04T10:00:00+00:00'
    """
    return ORIGIN + ((moment - ORIGIN) // step) * step


def duration_text(step: timedelta) -> str:
    """A duration in the largest unit that divides it: `30s`, `15m`, `6h`, `7d`."""
    seconds = int(step.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % UNITS[unit] == 0:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`: `2026-05-04T10:00:00Z`."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _checked(found: TimeRange) -> TimeRange:
    found.start  # noqa: B018  (raises OverflowError near the year 1)
    if found.count > MAX_BUCKETS:
        raise InvalidRequest(
            f"{found.count} buckets of {found.bucket_text} from {iso(found.since)} to "
            f"{iso(found.until)}: at most {MAX_BUCKETS}; choose a wider bucket or a shorter range"
        )
    return found
