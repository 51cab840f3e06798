"""Prometheus metrics of one server, in a registry of its own (no global state).

Request and classify latencies are observed as they happen; queue depth, posts by sentiment,
quarantined posts and child restarts are read when /metrics is scraped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """The histograms routes observe, and a collector for the values read at scrape time."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "volfefe_http_request_duration_seconds",
            "HTTP request latency by route template and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.classify = Histogram(
            "volfefe_classify_duration_seconds",
            "Time of one /api/v1/classify call in the classifier.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch = Histogram(
            "volfefe_classify_request_texts",
            "Texts per /api/v1/classify call.",
            buckets=SIZE_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Snapshot(snapshot))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class _Snapshot(Collector):
    """Values read when scraped: `snapshot()` returns children, pool, jobs and posts."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def describe(self) -> list[Metric]:
        """Nothing up front: registering must not query the database."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Read the snapshot and yield one metric family per value."""
        snap = self._snapshot()
        pool = snap["pool"]
        for name, key, text in (
            ("volfefe_child_restarts", "restarts", "Children replaced since start."),
            ("volfefe_pool_calls", "calls", "Calls (batches) sent to children."),
            ("volfefe_pool_texts", "texts", "Texts sent to children; / calls = mean batch."),
            ("volfefe_classifier_rebuilds", "rebuilds", "Broken pools replaced by a new one."),
        ):
            yield CounterMetricFamily(name, text, value=pool[key])
        children = GaugeMetricFamily("volfefe_children", "Child processes running.")
        children.add_metric([], len(snap["children"]))
        yield children
        jobs = GaugeMetricFamily("volfefe_jobs", "Classification jobs by state.", labels=["state"])
        for state, n in snap["jobs"].items():
            jobs.add_metric([state], n)
        yield jobs
        posts = GaugeMetricFamily("volfefe_posts", "Posts by sentiment.", labels=["sentiment"])
        for sentiment, n in snap["posts"].items():
            posts.add_metric([sentiment], n)
        yield posts
        quarantined = GaugeMetricFamily("volfefe_quarantined_posts", "Posts in quarantine.")
        quarantined.add_metric([], snap["quarantined"])
        yield quarantined
        oldest = GaugeMetricFamily(
            "volfefe_jobs_oldest_waiting_seconds", "Age of the oldest waiting job (0: none)."
        )
        oldest.add_metric([], snap["oldest_waiting_s"] or 0.0)
        yield oldest
        latency = HistogramMetricFamily(
            "volfefe_text_latency_seconds",
            "From a classify call to its answer, queue wait included, per text, by length class "
            "(short <= 64 tokens, medium <= 256, long).",
            labels=["length"],
        )
        for length, histogram in snap["latency"].items():
            latency.add_metric([length], histogram.cumulative(), histogram.total)
        yield latency
        yield from _sink_metrics(snap["sinks"])


SINK_LABELS = ["sink", "kind"]
SINK_FIGURES = (  # (name, key or how to read it, help); counters get `_total`
    ("volfefe_sink_deliveries", "delivered", "Messages a sink took (its receiver said so)."),
    ("volfefe_sink_failures", "failures", "Failed deliveries to a sink (each retry counts)."),
)
SINK_GAUGES = (
    ("volfefe_sink_consecutive_failures", "consecutive_failures", "Failed deliveries in a row."),
    ("volfefe_sink_pending_results", "pending", "Results a sink has still to get."),
    ("volfefe_sink_lag_seconds", "lag_s", "Age of the oldest result a sink has still to get."),
)


def _sink_metrics(sinks: list[dict[str, Any]]) -> Iterator[Metric]:
    """One family per figure, one sample per sink (labels: its id and kind)."""
    for name, key, text in SINK_FIGURES:
        counter = CounterMetricFamily(name, text, labels=SINK_LABELS)
        for sink in sinks:
            counter.add_metric([str(sink["id"]), sink["kind"]], sink[key])
        yield counter
    for name, key, text in SINK_GAUGES:
        gauge = GaugeMetricFamily(name, text, labels=SINK_LABELS)
        for sink in sinks:
            gauge.add_metric([str(sink["id"]), sink["kind"]], sink[key])
        yield gauge
    healthy = GaugeMetricFamily(
        "volfefe_sink_healthy",
        "0 when a sink failed VOLFEFE_SINK_UNHEALTHY_AFTER deliveries in a row (alert on it).",
        labels=SINK_LABELS,
    )
    paused = GaugeMetricFamily(
        "volfefe_sink_paused", "1 while a sink is paused.", labels=SINK_LABELS
    )
    last = GaugeMetricFamily(
        "volfefe_sink_last_delivery_timestamp_seconds",
        "Unix time of a sink's last delivery (0: never).",
        labels=SINK_LABELS,
    )
    for sink in sinks:
        labels = [str(sink["id"]), sink["kind"]]
        healthy.add_metric(labels, 0 if sink["state"] == "unhealthy" else 1)
        paused.add_metric(labels, 1 if sink["paused"] else 0)
        at = sink["last_delivery_at"]
        last.add_metric(labels, datetime.fromisoformat(at).timestamp() if at else 0.0)
    yield healthy
    yield paused
    yield last
