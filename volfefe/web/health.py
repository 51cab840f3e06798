"""`/healthz` (the process answers), `/readyz` (database, schema, a child) and `/metrics`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from volfefe.store.migrate import pending_migrations
from volfefe.web.encode import JSON
from volfefe.web.state import app_state

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


async def healthz(request: Request) -> Response:
    """200 while the process runs (liveness)."""
    return JSON({"status": "ok"})


def readyz(request: Request) -> Response:
    """200 when the database answers, its schema is current, the classifier's pool is ready
    (not broken, not being rebuilt) with a child running and the notification listener is
    connected; else 503 with each check's reason."""
    state = app_state(request)
    checks: dict[str, str] = {}
    try:
        with state.db.connection(timeout=5.0) as conn:
            pending = pending_migrations(conn)
        checks["database"] = "ok"
        checks["schema"] = "ok" if not pending else f"pending: {', '.join(pending)}"
    except Exception as exc:  # any failure here is "not ready", with its reason
        checks["database"] = f"{type(exc).__name__}: {exc}"
        checks["schema"] = "unknown"
    health = state.classifier.health()  # `starting` while a rebuilt pool boots
    if health != "ready":
        checks["classifier"] = health
    elif not state.classifier.pids():
        checks["classifier"] = "no child running"
    else:
        checks["classifier"] = "ok"
    checks["notifications"] = "ok" if state.hub.listening.is_set() else "not listening"
    ok = all(value == "ok" for value in checks.values())
    headers = None if ok else {"Retry-After": "5"}
    return JSON(
        {"status": "ready" if ok else "not ready", "checks": checks},
        status_code=200 if ok else 503,
        headers=headers,
    )


def metrics(request: Request) -> Response:
    """Prometheus text: request and classify latency, batch sizes, children, jobs, posts."""
    return Response(app_state(request).metrics.render(), media_type=PROMETHEUS)
