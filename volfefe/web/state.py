"""What every route shares, built in the app's lifespan and closed on shutdown."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import ConnectionPool
from starlette.requests import Request

from volfefe.config import Settings
from volfefe.protocol import Ready
from volfefe.supervisor.classifier import Classifier
from volfefe.web.hub import Hub
from volfefe.web.metrics import Metrics


@dataclass
class AppState:
    """One Classifier (one set of children), one connection pool, one notification hub."""

    settings: Settings
    database_url: str
    classifier: Classifier
    db: ConnectionPool[Any]
    hub: Hub
    metrics: Metrics
    quarantine: bool = False  # the database has the quarantine columns (migration 0004)
    ready: Ready | None = None  # the first child's ready line, once it came
    boot_error: BaseException | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)


def app_state(request: Request) -> AppState:
    """The AppState of the application serving `request`."""
    state: AppState = request.app.state.volfefe
    return state
