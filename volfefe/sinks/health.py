"""Each sink's health, one reader for `sinks list --json`, the HTTP API and /metrics.

```
state           healthy | failing (its last delivery failed) | unhealthy (failed
                VOLFEFE_SINK_UNHEALTHY_AFTER times in a row or more) | paused
pending         results it has still to get (its filters applied)
lag_s           age of the oldest of them (0 when none): how far behind it is
last_delivery_at, delivered, failures, consecutive_failures, last_error, last_error_at
```
"""

from __future__ import annotations

from typing import Any

import psycopg

from volfefe.sinks.outbox import pending
from volfefe.sinks.table import Sink, list_sinks


def describe(conn: psycopg.Connection[Any], sink: Sink, unhealthy_after: int) -> dict[str, Any]:
    """The sink (no secret) with its state, pending results and lag."""
    count, lag = pending(conn, sink)
    return {
        **sink.describe(),
        "state": sink.state(unhealthy_after),
        "pending": count,
        "lag_s": round(lag, 3),
    }


def health(conn: psycopg.Connection[Any], unhealthy_after: int) -> list[dict[str, Any]]:
    """Every sink, described, oldest first."""
    return [describe(conn, sink, unhealthy_after) for sink in list_sinks(conn)]
