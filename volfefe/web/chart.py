"""The overview's charts as SVG geometry, computed on the server so they show without JavaScript.

Both charts share a true time axis: x is proportional to time from `since` to `until` of a
`TimeRange`, so an empty stretch is as wide as it lasted. The rows are those of
`volfefe.store.sentiment_index` (every bucket, empty ones with posts 0).

- `timeline_chart`: stacked bars (posts per sentiment per bucket) and the mean confidence on
  a 0..1 scale, a line broken where a bucket has no post.
- `index_chart`: the sentiment index per bucket as a bar up (> 0) or down (< 0) from the
  zero line on a -1..1 scale, and the post count per bucket as bars below.

>>> from datetime import UTC, datetime, timedelta
>>> span = TimeRange(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 2, tzinfo=UTC),
...                  timedelta(hours=1))
>>> rows = [{"start": span.since, "posts": 4, "positive": 2, "negative": 1, "neutral": 1,
...          "index": 0.25, "mean_confidence": 0.5},
...         {"start": span.since + span.bucket, "posts": 0, "positive": 0, "negative": 0,
...          "neutral": 0, "index": None, "mean_confidence": None}]
>>> c = timeline_chart(rows, span)
>>> len(c["bars"]), [round(r["height"]) for r in c["bars"][0]["rects"]], c["line"]
(1, [97, 48, 48], 'M228.0,117.0')
>>> [t["label"] for t in c["ticks"]][:3]
['00:00', '00:15', '00:30']
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from volfefe.web.timerange import TimeRange, floor

WIDTH, HEIGHT = 800, 240
LEFT, RIGHT, TOP, BOTTOM = 42, 12, 20, 26
ORDER = ("positive", "neutral", "negative")
MAX_TICKS = 8
TICK_STEPS = tuple(
    timedelta(minutes=m) for m in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720)
) + tuple(timedelta(days=d) for d in (1, 2, 7, 14, 28, 91, 182, 364, 728, 1820, 3640))
INDEX_BOTTOM = 150  # the index panel spans TOP..INDEX_BOTTOM; the post counts lie below
VOLUME_TOP = 166


class TimeAxis:
    """x positions of moments between `span.since` and `span.until`, and the tick marks."""

    def __init__(self, span: TimeRange) -> None:
        self.span = span
        self.width = WIDTH - LEFT - RIGHT

    def x(self, moment: datetime) -> float:
        """The x of `moment`, clamped to the plot."""
        moment = min(max(moment, self.span.since), self.span.until)
        return LEFT + (moment - self.span.since) / self.span.span * self.width

    def bucket(self, start: datetime) -> tuple[float, float]:
        """The x and width of the bar of the bucket starting at `start`, a thin gap between
        neighbours (at least one pixel wide, so a lone post still shows)."""
        x0, x1 = self.x(start), self.x(start + self.span.bucket)
        gap = min(1.0, (x1 - x0) * 0.15)
        return x0, max(x1 - x0 - gap, 1.0)

    def ticks(self) -> list[dict[str, Any]]:
        """At most MAX_TICKS labelled marks at round times (on the hour, at midnight, ...)."""
        span = self.span.span
        step = next(
            (s for s in TICK_STEPS if span / s <= MAX_TICKS),
            span,
        )
        fmt = "%H:%M" if step < timedelta(days=1) else "%Y-%m-%d"
        if step < timedelta(days=1) and span > timedelta(days=1):
            fmt = "%m-%d %H:%M"
        first = floor(self.span.since, step)
        if first < self.span.since:
            first += step
        out = []
        moment = first
        while moment <= self.span.until:
            out.append({"x": self.x(moment), "label": moment.strftime(fmt)})
            moment += step
        return out


def timeline_chart(rows: list[dict[str, Any]], span: TimeRange) -> dict[str, Any]:
    """Bars per sentiment, the confidence line and the axis for the buckets in `rows`."""
    axis = TimeAxis(span)
    plot_h = HEIGHT - TOP - BOTTOM
    peak = max((int(r["posts"]) for r in rows), default=0) or 1
    bars, segments, dots, pen_down = [], [], [], False
    for row in rows:
        x, width = axis.bucket(row["start"])
        if row["posts"]:
            y = float(TOP + plot_h)
            rects = []
            for sentiment in ORDER:
                h = int(row[sentiment]) / peak * plot_h
                y -= h
                rects.append({"sentiment": sentiment, "y": y, "height": h, "n": row[sentiment]})
            bars.append({"x": x, "width": width, "rects": rects, "label": _when(row["start"])})
        if row["mean_confidence"] is None:
            pen_down = False
            continue
        cy = TOP + plot_h * (1 - float(row["mean_confidence"]))
        segments.append(f"{'L' if pen_down else 'M'}{x + width / 2:.1f},{cy:.1f}")
        dots.append({"x": x + width / 2, "y": cy})  # a lone bucket's point is a dot, no line
        pen_down = True
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "baseline": TOP + plot_h,
        "bars": bars,
        "line": " ".join(segments),
        "dots": dots,
        "peak": peak,
        "ticks": axis.ticks(),
        "posts": sum(int(r["posts"]) for r in rows),
    }


def index_chart(rows: list[dict[str, Any]], span: TimeRange) -> dict[str, Any]:
    """Index bars around the zero line, post-count bars below, and the axis."""
    axis = TimeAxis(span)
    half = (INDEX_BOTTOM - TOP) / 2
    zero = TOP + half
    volume_h = HEIGHT - BOTTOM - VOLUME_TOP
    peak = max((int(r["posts"]) for r in rows), default=0) or 1
    bars, volume = [], []
    for row in rows:
        if not row["posts"]:
            continue
        x, width = axis.bucket(row["start"])
        value = float(row["index"])
        h = max(abs(value) * half, 1.0)  # a zero index still shows as a hairline
        bars.append(
            {
                "x": x,
                "width": width,
                "y": zero - h if value >= 0 else zero,
                "height": h,
                "kind": "positive" if value > 0 else "negative" if value < 0 else "neutral",
                "index": value,
                "posts": row["posts"],
                "label": _when(row["start"]),
            }
        )
        vh = int(row["posts"]) / peak * volume_h
        volume.append({"x": x, "width": width, "y": HEIGHT - BOTTOM - vh, "height": vh})
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "zero": zero,
        "bottom": INDEX_BOTTOM,
        "volume_top": VOLUME_TOP,
        "baseline": HEIGHT - BOTTOM,
        "bars": bars,
        "volume": volume,
        "peak": peak,
        "ticks": axis.ticks(),
    }


def _when(start: datetime) -> str:
    return start.strftime("%Y-%m-%d %H:%M UTC")
