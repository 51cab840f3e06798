"""The ASGI application of `volfefe serve`.

```
lifespan: the Classifier (started, children ready, before the server listens; closed at
          shutdown), psycopg pool, LISTEN hub
/api/v1/classify  POST   api_classify      /api/v1/posts        GET, POST  api_posts
/api/v1/posts/N   GET    api_posts         /api/v1/stats, /timeline    GET  api_stats
/api/v1/index     GET    api_index (JSON, CSV)
/api/v1/jobs      GET    api_jobs          /api/v1/jobs/N/retry|cancel POST api_jobs
/api/v1/sinks     GET, POST  api_sinks     /api/v1/sinks/N  DELETE; /pause|resume|test POST
/api/v1/stream    GET    stream (SSE)      /api/v1/openapi.json        GET  openapi
/healthz /readyz /metrics  health          /, /posts, /posts/N, /jobs, /login  pages
/tape, /api/v1/tape  GET  tape             /pipeline, /api/v1/pipeline  GET  pipeline
/static/*          vendored CSS and JavaScript (no CDN)
```
Every route gets the shared `AppState` through `request.app.state.volfefe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from importlib import resources

import psycopg
from psycopg_pool import PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from volfefe.config import Settings
from volfefe.errors import VolfefeError
from volfefe.protocol import Ready
from volfefe.store.connect import make_pool
from volfefe.supervisor.classifier import Classifier
from volfefe.web import (
    api_classify,
    api_index,
    api_jobs,
    api_posts,
    api_sinks,
    api_stats,
    health,
    openapi,
    pages,
    pipeline,
    tape,
)
from volfefe.web.errors import (
    on_database_error,
    on_http_exception,
    on_unexpected,
    on_volfefe_error,
)
from volfefe.web.hub import Hub
from volfefe.web.login import LoginAttempts
from volfefe.web.metrics import Metrics
from volfefe.web.overview import metrics_snapshot
from volfefe.web.state import AppState
from volfefe.web.stream import stream

logger = logging.getLogger(__name__)

DB_POOL_SIZE = 10


def routes() -> list[BaseRoute]:
    """Every route of the service."""
    static = StaticFiles(directory=str(resources.files("volfefe.web") / "static"))
    return [
        Route("/api/v1/classify", api_classify.classify, methods=["POST"]),
        Route("/api/v1/posts", api_posts.posts_page, methods=["GET"]),
        Route("/api/v1/posts", api_posts.ingest, methods=["POST"]),
        Route("/api/v1/posts/{id:int}", api_posts.post_detail, methods=["GET"]),
        Route("/api/v1/stats", api_stats.stats, methods=["GET"]),
        Route("/api/v1/timeline", api_stats.timeline_route, methods=["GET"]),
        Route("/api/v1/index", api_index.index_route, methods=["GET"]),
        Route("/api/v1/jobs", api_jobs.jobs_page, methods=["GET"]),
        Route("/api/v1/jobs/{id:int}/retry", api_jobs.retry_job, methods=["POST"]),
        Route("/api/v1/jobs/{id:int}/cancel", api_jobs.cancel_job, methods=["POST"]),
        Route("/api/v1/sinks", api_sinks.sinks_page, methods=["GET"]),
        Route("/api/v1/sinks", api_sinks.create, methods=["POST"]),
        Route("/api/v1/sinks/{id:int}", api_sinks.remove, methods=["DELETE"]),
        Route("/api/v1/sinks/{id:int}/pause", api_sinks.pause, methods=["POST"]),
        Route("/api/v1/sinks/{id:int}/resume", api_sinks.resume, methods=["POST"]),
        Route("/api/v1/sinks/{id:int}/test", api_sinks.test, methods=["POST"]),
        Route("/api/v1/stream", stream, methods=["GET"]),
        Route("/api/v1/openapi.json", openapi.document, methods=["GET"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        *pages.routes(),
        *tape.routes(),  # /tape, /api/v1/tape
        *pipeline.routes(),  # /pipeline, /api/v1/pipeline
        Mount("/static", app=static, name="static"),
    ]


def create_app(
    settings: Settings, database_url: str, classifier: Classifier, ready: Ready
) -> Starlette:
    """The application for `settings` on an existing, migrated database, classifying with
    `classifier`, already started (`ready` is its first ready line); the app closes it when
    it shuts down."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = make_pool(database_url, size=DB_POOL_SIZE, name="volfefe serve", timeout=10.0)
        await asyncio.to_thread(db.open, wait=True, timeout=30.0)
        hub = Hub(database_url)
        state = AppState(
            settings=settings,
            database_url=database_url,
            classifier=classifier,
            ready=ready,
            db=db,
            hub=hub,
            metrics=Metrics(lambda: metrics_snapshot(state)),
            logins=LoginAttempts(settings.login_max_failures, settings.login_window),
        )
        app.state.volfefe = state
        hub.start()
        try:
            yield
        finally:
            await hub.close()
            await classifier.aclose()
            await asyncio.to_thread(db.close)

    app = Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers={
            VolfefeError: on_volfefe_error,
            HTTPException: on_http_exception,
            psycopg.OperationalError: on_database_error,
            PoolTimeout: on_database_error,
            Exception: on_unexpected,
        },
    )
    app.add_middleware(RequestMetrics)
    return app


class RequestMetrics:
    """Observe each HTTP request's latency by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            state: AppState | None = getattr(scope["app"].state, "volfefe", None)
            if state is not None:
                state.metrics.requests.labels(scope["method"], _route(scope), str(status)).observe(
                    time.monotonic() - started
                )


def _route(scope: Scope) -> str:
    """The route template (`/api/v1/posts/{id:int}`), so labels stay few."""
    for route in scope["app"].routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "other"))
    return "unmatched"
