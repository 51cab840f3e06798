"""Prometheus metrics of one server, in a registry of its own (no global state).

Request and classify latencies are observed as they happen; queue depth, posts by sentiment,
quarantined posts and child restarts are read when /metrics is scraped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
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
