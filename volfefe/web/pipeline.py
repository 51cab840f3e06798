"""Pipeline health: `GET /pipeline` (the page) and `GET /api/v1/pipeline` (its numbers).

`/healthz` and `/readyz` answer a load balancer; this answers a person: is the pipeline
keeping up, and if not, why.

```
verdict     ok, or degraded with the checks that failed (each links to its section)
latency     arrival -> classification, p50 / p99 by length class, from stored rows
throughput  classifications per bucket of the range, with each bucket's p50 / p99
backlog     jobs waiting and running at the end of each bucket (procrastinate's events),
            and now: counts by state, the oldest waiting job
children    restarts and pool rebuilds of this server's classifier since it started
quarantine  posts in quarantine, and those quarantined in the range
sinks       each sink's state, pending results and lag
```
The range is web/timerange's (`range=15m|1h|24h|7d`, 1h by default, or `since`/`until`, and
`bucket`). Every figure is computed at `computed_at`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from volfefe.jobs.backlog import backlog_history
from volfefe.jobs.queue import QUEUE, status
from volfefe.sinks.health import health as sink_health
from volfefe.store.pipeline import latency_by_length, per_bucket, quarantined_between
from volfefe.supervisor.latency import LENGTH_CLASSES
from volfefe.web import children, timerange
from volfefe.web.encode import JSON
from volfefe.web.pages import render
from volfefe.web.range_picker import picker
from volfefe.web.state import AppState, app_state
from volfefe.web.timerange import TimeRange

DEFAULT_RANGE = "1h"
MAX_OLDEST_WAITING_S = 60.0  # a waiting job older than this: the workers do not keep up
MAX_P99_S = 30.0  # arrival -> signal p99 over the range above this: degraded
QUARANTINED_SHOWN = 10
SHORT, MEDIUM = (int(most) for _, most in LENGTH_CLASSES if most is not None)


def routes() -> list[Route]:
    """The pipeline page and its JSON route."""
    return [
        Route("/pipeline", pipeline_page, methods=["GET"]),
        Route("/api/v1/pipeline", pipeline_api, methods=["GET"]),
    ]


def collect(state: AppState, span: TimeRange, now: datetime) -> dict[str, Any]:
    """Every figure of the pipeline page, and the verdict."""
    since, until, start, step = span.since, span.until, span.start, span.bucket
    with state.db.connection() as conn:
        latency = latency_by_length(conn, since, until, short=SHORT, medium=MEDIUM)
        buckets = per_bucket(conn, since, until, start, step, short=SHORT, medium=MEDIUM)
        backlog = backlog_history(conn, start, until, step)
        queue = status(conn, failures=QUARANTINED_SHOWN)
        quarantined_in_range = quarantined_between(conn, since, until)
        sinks = sink_health(conn, state.settings.sink_unhealthy_after)
    for bucket, jobs in zip(buckets, backlog, strict=True):
        bucket.update(
            waiting=jobs["waiting"],
            running=jobs["running"],
            failed=jobs["failed"],
            retries=jobs["retries"],
        )
    counts = queue["queues"].get(QUEUE, {})
    clf = state.classifier
    data: dict[str, Any] = {
        "computed_at": now,
        "range": {
            "preset": span.preset,
            "since": since,
            "until": until,
            "bucket": span.bucket_text,
            "bucket_s": step.total_seconds(),
        },
        "latency": latency,
        "buckets": buckets,
        "jobs": {
            "counts": counts,
            "waiting": counts.get("todo", 0),
            "running": counts.get("doing", 0),
            "failed": counts.get("failed", 0),
            "oldest_waiting_s": queue["oldest_waiting_s"],
            "failed_in_range": sum(b["failed"] for b in buckets),
            "recent_failures": queue["failures"],
        },
        "classifier": {
            "health": clf.health(),
            "children": children.describe(clf.pids()),
            "pool": clf.stats(),
            "notifications": state.hub.listening.is_set(),
        },
        "quarantine": {
            "total": queue["quarantined"],
            "in_range": quarantined_in_range,
            "recent": queue["quarantined_posts"],
        },
        "sinks": sinks,
    }
    # the failed checks first: the top of the page says why
    found = sorted(checks(data), key=lambda check: check["ok"])
    verdict = "ok" if all(c["ok"] for c in found) else "degraded"
    return {"status": verdict, "checks": found, **data}


def checks(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One `{name, ok, detail, anchor}` per thing that can make the pipeline degraded."""
    clf = data["classifier"]
    jobs = data["jobs"]
    oldest = jobs["oldest_waiting_s"]
    p99 = data["latency"]["all"]["p99_s"]
    bad_sinks = [s for s in data["sinks"] if s["state"] in ("failing", "unhealthy")]
    ready = clf["health"] == "ready" and bool(clf["children"])
    return [
        {
            "name": "classifier",
            "ok": ready,
            "detail": f"{len(clf['children'])} "
            f"{'child' if len(clf['children']) == 1 else 'children'}, {clf['health']}",
            "anchor": "children",
        },
        {
            "name": "live notifications",
            "ok": clf["notifications"],
            "detail": "listening" if clf["notifications"] else "not listening (reconnecting)",
            "anchor": "children",
        },
        {
            "name": "backlog",
            "ok": oldest is None or oldest <= MAX_OLDEST_WAITING_S,
            "detail": f"{jobs['waiting']} waiting"
            + (f", the oldest for {oldest:.0f} s" if oldest is not None else "")
            + f" (limit {MAX_OLDEST_WAITING_S:.0f} s)",
            "anchor": "backlog",
        },
        {
            "name": "latency",
            "ok": p99 is None or p99 <= MAX_P99_S,
            "detail": (
                "no classification in the range"
                if p99 is None
                else f"p99 {p99:.2f} s arrival to signal (limit {MAX_P99_S:.0f} s)"
            ),
            "anchor": "latency",
        },
        {
            "name": "failed jobs",
            "ok": jobs["failed"] == 0,
            "detail": f"{jobs['failed']} failed, waiting for a retry",
            "anchor": "failures",
        },
        {
            "name": "quarantine",
            "ok": data["quarantine"]["in_range"] == 0,
            "detail": f"{data['quarantine']['in_range']} quarantined in the range, "
            f"{data['quarantine']['total']} in all",
            "anchor": "quarantine",
        },
        {
            "name": "sinks",
            "ok": not bad_sinks,
            "detail": (
                f"{len(bad_sinks)} of {len(data['sinks'])} failing"
                if bad_sinks
                else f"{len(data['sinks'])} delivering"
            ),
            "anchor": "sinks",
        },
    ]


def pipeline_api(request: Request) -> Response:
    """`GET /api/v1/pipeline`: the verdict and every figure, with `computed_at`."""
    now = datetime.now(UTC)
    span = timerange.parse(request.query_params, now=now, default=DEFAULT_RANGE)
    return JSON(collect(app_state(request), span, now))


def pipeline_page(request: Request) -> Response:
    """The verdict on top, then each section with its figures and charts."""
    now = datetime.now(UTC)
    span = timerange.parse(request.query_params, now=now, default=DEFAULT_RANGE)
    data = collect(app_state(request), span, now)
    return render(
        request,
        "pipeline.html",
        data=data,
        picker=picker(span, "/pipeline", {}),
        range_query=span.query(),
        charts=charts(data["buckets"]),
        lengths=(*(name for name, _ in LENGTH_CLASSES), "unknown", "all"),
    )


CHART_W, CHART_H = 600, 120


def charts(buckets: list[dict[str, Any]]) -> dict[str, Any]:
    """Bar heights (SVG units) per bucket for throughput, backlog and latency p99."""

    def scaled(key: str) -> dict[str, Any]:
        values = [max(float(b[key] or 0), 0.0) for b in buckets]
        peak = max(values, default=0.0)
        width = CHART_W / max(len(values), 1)
        bars = [
            {
                "x": i * width,
                "width": max(width - 1, 1),
                "height": (v / peak) * (CHART_H - 4) if peak else 0.0,
                "value": v,
                "start": b["start"],
            }
            for i, (v, b) in enumerate(zip(values, buckets, strict=True))
        ]
        return {"bars": bars, "peak": peak}

    return {
        "width": CHART_W,
        "height": CHART_H,
        "throughput": scaled("classified"),
        "p99": scaled("p99_s"),
        "waiting": scaled("waiting"),
    }
