"""The numbers of the overview: one function feeds /api/v1/stats, the dashboard and /metrics."""

from __future__ import annotations

from typing import Any

from volfefe.jobs.queue import QUEUE, status
from volfefe.sinks.health import health
from volfefe.store.browse import classified_within, quarantined_count
from volfefe.store.posts import stats
from volfefe.web import children
from volfefe.web.state import AppState

THROUGHPUT_WINDOW = 3600.0  # seconds: "throughput over the last hour"


JOB_STATES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")


def collect(state: AppState) -> dict[str, Any]:
    """Totals, sentiment distribution, backlog, throughput, quarantine and the children."""
    with state.db.connection() as conn:
        totals = stats(conn)
        queue = status(conn, failures=0)
        done_last_hour = classified_within(conn, THROUGHPUT_WINDOW)
        quarantined = quarantined_count(conn)
    jobs = queue["queues"].get(QUEUE, {})
    clf = state.classifier
    return {
        "posts": {
            "total": totals["total"],
            "classified": totals["classified"],
            "unclassified": totals["unclassified"],
            "empty_text": totals["empty_text"],
            "quarantined": quarantined,
        },
        "distribution": totals["distribution"],
        "jobs": jobs,
        "backlog": jobs.get("todo", 0) + jobs.get("doing", 0),
        "oldest_waiting_s": queue["oldest_waiting_s"],
        "throughput": {
            "window_s": THROUGHPUT_WINDOW,
            "classified": done_last_hour,
            "per_minute": round(done_last_hour / (THROUGHPUT_WINDOW / 60), 2),
        },
        "children": children.describe(clf.pids()),
        "pool": clf.stats(),
        "model_version": state.ready.model_version,
    }


def metrics_snapshot(state: AppState) -> dict[str, Any]:
    """What the /metrics collector reads at scrape time."""
    data = collect(state)
    with state.db.connection() as conn:
        sinks = health(conn, state.settings.sink_unhealthy_after)
    posts = dict(data["distribution"])
    posts["unclassified"] = data["posts"]["unclassified"]
    return {
        "pool": data["pool"],
        "children": data["children"],
        # every state, 0 when none: a series that comes and goes breaks rate() and alerts
        "jobs": {state: data["jobs"].get(state, 0) for state in JOB_STATES} | data["jobs"],
        "posts": posts,
        "quarantined": data["posts"]["quarantined"],
        "oldest_waiting_s": data["oldest_waiting_s"],
        "latency": state.classifier.latency(),
        "sinks": sinks,
    }
