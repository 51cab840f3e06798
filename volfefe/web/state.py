"""What every route shares, built in the app's lifespan and closed on shutdown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool
from starlette.requests import Request

from volfefe.config import Settings
from volfefe.protocol import Ready
from volfefe.supervisor.classifier import Classifier
from volfefe.web.hub import Hub
from volfefe.web.login import LoginAttempts
from volfefe.web.metrics import Metrics


@dataclass
class AppState:
    """One Classifier (one set of children, started before the server listens; it rebuilds
    its own pool when that breaks), one connection pool, one notification hub."""

    settings: Settings
    database_url: str
    classifier: Classifier
    ready: Ready  # the classifier's first ready line: the model version the server reports
    db: ConnectionPool[Any]
    hub: Hub
    metrics: Metrics
    logins: LoginAttempts  # failed /login tries per client address


def app_state(request: Request) -> AppState:
    """The AppState of the application serving `request`."""
    state: AppState = request.app.state.volfefe
    return state
