"""The suites, by name, in the order `python -m benches list` shows them."""

from __future__ import annotations

from ..harness.suite import Suite
from .bulk_order import SUITE as BULK_ORDER
from .http import SUITE as HTTP
from .realtime import SUITE as REALTIME
from .runtimes import SUITE as RUNTIMES
from .shapes import SUITE as SHAPES
from .sinks import SUITE as SINKS
from .throughput.cli import SUITE as THROUGHPUT

SUITES: dict[str, Suite] = {
    suite.name: suite for suite in (THROUGHPUT, REALTIME, RUNTIMES, HTTP, SHAPES, BULK_ORDER, SINKS)
}
