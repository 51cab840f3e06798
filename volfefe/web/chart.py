"""The timeline chart as SVG geometry, computed on the server so it shows without JavaScript.

Stacked bars (posts per sentiment per bucket) and a line of mean confidence on a 0..1 scale.

>>> c = timeline_chart([{"bucket": None, "positive": 2, "negative": 1, "neutral": 1,
...                      "mean_confidence": 0.5}])
>>> [round(r["height"]) for r in c["bars"][0]["rects"]], c["line"]
([100, 50, 50], '338.0,120.0')
"""

from __future__ import annotations

from typing import Any

WIDTH, HEIGHT = 800, 240
LEFT, TOP, BOTTOM = 30, 20, 20
ORDER = ("positive", "neutral", "negative")
LABEL = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d"}


def timeline_chart(rows: list[dict[str, Any]], bucket: str = "day") -> dict[str, Any]:
    """Bars, the confidence polyline and labels for `rows` of `volfefe.store.browse.timeline`."""
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT) / max(len(rows), 1)
    peak = max((sum(int(r[s]) for s in ORDER) for r in rows), default=0) or 1
    bars, points = [], []
    for i, row in enumerate(rows):
        x = LEFT + i * slot
        y = float(TOP + plot_h)
        rects = []
        for sentiment in ORDER:
            h = int(row[sentiment]) / peak * plot_h
            y -= h
            rects.append({"sentiment": sentiment, "x": x, "y": y, "height": h, "n": row[sentiment]})
        label = row["bucket"].strftime(LABEL[bucket]) if row["bucket"] else ""
        bars.append({"rects": rects, "width": max(slot * 0.8, 1), "label": label})
        if row["mean_confidence"] is not None:
            cy = TOP + plot_h * (1 - float(row["mean_confidence"]))
            points.append(f"{x + slot * 0.4:.1f},{cy:.1f}")
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "bars": bars,
        "line": " ".join(points),
        "peak": peak,
        "first": bars[0]["label"] if bars else "",
        "last": bars[-1]["label"] if bars else "",
    }
