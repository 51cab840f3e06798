"""What every route shares, built in the app's lifespan and closed on shutdown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool
from starlette.requests import Request

from volfefe.config import Settings
from volfefe.web.hub import Hub
from volfefe.web.lifeline import Lifeline
from volfefe.web.metrics import Metrics


@dataclass
class AppState:
    """One Classifier (one set of children, owned by the lifeline), one connection pool,
    one notification hub."""

    settings: Settings
    database_url: str
    lifeline: Lifeline
    db: ConnectionPool[Any]
    hub: Hub
    metrics: Metrics
    quarantine: bool = False  # the database has the quarantine columns (migration 0004)


def app_state(request: Request) -> AppState:
    """The AppState of the application serving `request`."""
    state: AppState = request.app.state.volfefe
    return state
