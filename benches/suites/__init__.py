"""The suites, by name, in the order `python -m benches list` shows them."""

from __future__ import annotations

from ..harness.suite import Suite
from .realtime import SUITE as REALTIME
from .throughput.cli import SUITE as THROUGHPUT

SUITES: dict[str, Suite] = {suite.name: suite for suite in (THROUGHPUT, REALTIME)}
