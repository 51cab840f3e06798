"""The dashboard: server-rendered pages (Jinja2) that work without JavaScript; the vendored
`static/live.js` adds live rows from the SSE stream.

Retry and cancel are HTML forms. When a token is configured they need the session cookie that
`/login` sets (HttpOnly, SameSite=Strict, signed: login.py) and a same-origin form.
"""

from __future__ import annotations

import hmac
import logging
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from volfefe.errors import ContentNotFound, VolfefeError
from volfefe.jobs.listing import STATES, list_jobs
from volfefe.jobs.queue import QUEUE, status
from volfefe.result import SENTIMENTS
from volfefe.store.browse import get_post, list_posts, recent_classifications
from volfefe.web import overview, params, timerange
from volfefe.web.access import read_body, require_writer
from volfefe.web.api_index import index_buckets
from volfefe.web.api_jobs import do_cancel, do_retry, missing_job
from volfefe.web.api_posts import post_json, read_filter
from volfefe.web.chart import index_chart, timeline_chart
from volfefe.web.errors import TooManyAttempts, Unauthorized
from volfefe.web.login import COOKIE, new_session
from volfefe.web.range_picker import picker
from volfefe.web.state import app_state

logger = logging.getLogger(__name__)

# Only our own script and styles run; inline style attributes draw the bars.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
STATS_REFRESH = 10  # seconds between the overview's refreshes of its counts (overview.js)
RECENT_FAILURES = 10  # failed or retried attempts listed above the jobs, newest first
TEMPLATES = Environment(
    loader=PackageLoader("volfefe.web", "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)


def routes() -> list[Route]:
    """The dashboard's routes."""
    return [
        Route("/", overview_page, methods=["GET"]),
        Route("/posts", posts_page, methods=["GET"]),
        Route("/posts/{id:int}", post_page, methods=["GET"]),
        Route("/jobs", jobs_page, methods=["GET"]),
        Route("/jobs/{id:int}/{action:str}", job_action, methods=["POST"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
    ]


def render(
    request: Request,
    name: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a template with the common context (current path, whether writes need login)."""
    state = app_state(request)
    html = TEMPLATES.get_template(name).render(
        path=request.url.path, needs_login=state.settings.api_token is not None, **context
    )
    return HTMLResponse(html, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})})


def overview_page(request: Request) -> Response:
    """Totals, distribution, the range picker, the index and timeline charts of that range,
    children, latest results."""
    state = app_state(request)
    span = timerange.parse(request.query_params)
    source = params.text(request.query_params, "source")
    keep = {"source": source} if source else {}
    data = overview.collect(state)
    with state.db.connection() as conn:
        rows = index_buckets(conn, span, source)
        recent = recent_classifications(conn, limit=15)
    classified = sum(data["distribution"].values()) or 1
    data_query = urllib.parse.urlencode({**span.query(), **keep})
    return render(
        request,
        "overview.html",
        data=data,
        shares={s: data["distribution"][s] / classified for s in SENTIMENTS},
        span=span,
        source=source,
        picker=picker(span, "/", keep),
        chart=timeline_chart(rows, span),
        index=index_chart(rows, span),
        json_url="/api/v1/index?" + data_query,
        csv_url="/api/v1/index?" + data_query + "&format=csv",
        computed_at=datetime.now(UTC),
        refresh_s=STATS_REFRESH,
        recent=recent,
    )


def posts_page(request: Request) -> Response:
    """Posts with filters and search, newest first, a page at a time."""
    state = app_state(request)
    where = read_filter(request)
    with state.db.connection() as conn:
        rows, cursor = list_posts(conn, where)
    query = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
    filtered = any(k in query for k in ("sentiment", "min_confidence", "since", "until", "q"))
    next_url = None
    if cursor is not None:
        next_url = "/posts?" + urllib.parse.urlencode({**query, "cursor": cursor})
    return render(
        request,
        "posts.html",
        posts=[post_json(row) for row in rows],
        query=query,
        sentiments=SENTIMENTS,
        next_url=next_url,
        live=not filtered and where.before is None,
    )


def post_page(request: Request) -> Response:
    """One post: text, the three probabilities as bars, model, truncation, quarantine, jobs."""
    state = app_state(request)
    content_id = params.row_id(request, ContentNotFound)
    with state.db.connection() as conn:
        row = get_post(conn, content_id)
    return render(
        request,
        "post.html",
        post=post_json(row),
        jobs=row["jobs"],
        attempts=row["attempts"],
        sentiments=SENTIMENTS,
    )


def jobs_page(request: Request, message: str | None = None, status_code: int = 200) -> Response:
    """Counts by state, then jobs (failed first by default) with their full error text."""
    state = app_state(request)
    wanted = params.choice(request.query_params, "state", STATES)
    with state.db.connection() as conn:
        jobs, _ = list_jobs(conn, state=wanted, limit=100)
        queue = status(conn, failures=RECENT_FAILURES)
    return render(
        request,
        "jobs.html",
        failures=queue["failures"],
        status_code=status_code,
        counts=queue["queues"].get(QUEUE, {}),
        oldest=queue["oldest_waiting_s"],
        jobs=jobs,
        states=STATES,
        wanted=wanted,
        message=message,
    )


def job_action(request: Request) -> Response:
    """The retry and cancel buttons: act, then show the jobs page again (303)."""
    state = app_state(request)
    try:
        require_writer(
            request,
            state.settings.api_token,
            session_max_age=state.settings.login_session_max_age,
        )
    except Unauthorized:
        return RedirectResponse("/login", status_code=303)
    action = request.path_params["action"]
    try:
        job_id = params.row_id(request, missing_job)
        if action == "retry":
            do_retry(state, job_id)
        elif action == "cancel":
            do_cancel(state, job_id)
        else:
            return jobs_page(request, f"unknown action {action!r}", 404)
    except VolfefeError as exc:
        return jobs_page(request, f"{type(exc).__name__}: {exc}", 409)
    back = request.headers.get("referer", "/jobs")
    if not back.startswith(str(request.base_url)):
        back = "/jobs"
    return RedirectResponse(back, status_code=303)


def login_page(request: Request) -> Response:
    """The form that stores the API token in a cookie for the dashboard's buttons."""
    return render(request, "login.html", error=None)


async def login(request: Request) -> Response:
    """Check the token and set the session cookie (signed; never the token itself); a wrong
    token shows the form again (401), and a client address with `login_max_failures` failed
    tries in `login_window` seconds gets 429 TooManyAttempts with Retry-After, right token
    or not."""
    state = app_state(request)
    settings = state.settings
    client = request.client.host if request.client else "?"
    wait = state.logins.retry_after(client)
    if wait is not None:
        refused = TooManyAttempts(
            f"too many failed logins from this address; try again in {wait} s", retry_after=wait
        )
        logger.warning("429 for POST /login from %s: %s", client, refused)
        return render(
            request,
            "login.html",
            status_code=429,
            headers={"Retry-After": str(wait)},
            error=f"{type(refused).__name__}: {refused}",
        )
    fields = urllib.parse.parse_qs((await read_body(request, 4096)).decode("utf-8", "replace"))
    token = (fields.get("token") or [""])[0]
    expected = settings.api_token
    if expected is None or not hmac.compare_digest(token.encode(), expected.encode()):
        if expected is not None:
            state.logins.failed(client)
            logger.warning("401 for POST /login from %s: wrong token", client)
        return render(request, "login.html", status_code=401, error="wrong token")
    state.logins.succeeded(client)
    response = RedirectResponse("/jobs", status_code=303)
    response.set_cookie(
        COOKIE,
        new_session(expected),
        max_age=int(settings.login_session_max_age),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response
