"""The dashboard in a real browser (Debian's chromium driven by Playwright) against a real
`volfefe serve --with-worker`: what a person sees on each page, a retry click, live rows.

Screenshots go to this module's pytest temporary folder (`dashboard-*.png`). Without
chromium the tests skip, except with CI=true, where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.helpers import eventually
from tests.jobs.helpers import insert_posts
from tests.web.conftest import TOKEN, Serve, Served
from volfefe.jobs.queue import enqueue

pytestmark = pytest.mark.db

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEADLINE = 90.0
WAIT_MS = int(DEADLINE * 1000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless chromium launched by path (browsers cannot be downloaded here)."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is not installed (scripts/setup installs it as root with apt)"
    elif importlib.util.find_spec("playwright") is None:
        missing = "the playwright package is not installed (pip install -e '.[dev]')"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run: {missing}")
        pytest.skip(f"browser tests skipped: {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(serve: Serve, web_database_url: str) -> Served:
    """A server with a job worker and a token, on a database of this module."""
    return serve(web_database_url, "--with-worker")


@pytest.fixture
def page(browser: Any, site: Served) -> Iterator[Any]:
    """A fresh browser page (its own cookies) on the site, laptop-sized."""
    context = browser.new_context(base_url=site.base_url, viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go (kept with pytest's temporary folders)."""
    return tmp_path_factory.mktemp("screenshots")


def ingest(site: Served, *posts: dict[str, Any]) -> list[int]:
    """Post through the API with the token; returns the new posts' ids."""
    with site.client(TOKEN) as client:
        response = client.post("/api/v1/posts", json={"posts": list(posts)})
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["posts"]]


def classified(site: Served) -> int:
    """How many posts have a classification now."""
    return int(httpx.get(site.base_url + "/api/v1/stats").json()["posts"]["classified"])


def test_overview_shows_totals_chart_children_and_live_rows(
    page: Any, site: Served, shots: Path
) -> None:
    ingest(
        site,
        {
            "source": "dash",
            "external_id": "1",
            "text": "Stocks soar on the trade deal",
            "published_at": "2025-05-01T09:00:00Z",
        },
        {
            "source": "dash",
            "external_id": "2",
            "text": "Tariffs will hurt exporters badly",
            "published_at": "2025-05-02T15:00:00Z",
        },
        {
            "source": "dash",
            "external_id": "3",
            "text": "The meeting is on Tuesday",
            "published_at": "2025-05-03T11:00:00Z",
        },
    )
    eventually(lambda: classified(site) == 3, timeout=DEADLINE, interval=0.2)
    stats = httpx.get(site.base_url + "/api/v1/stats").json()

    page.goto("/?since=2025-05-01&until=2025-05-04")  # the posts' days
    assert page.inner_text("h1") == "Overview"
    assert page.inner_text("#total-posts") == "3"
    assert page.inner_text("#total-classified") == "3"
    assert page.locator("svg.chart rect").count() >= 3  # one bar segment per classified post
    pid = str(stats["children"][0]["pid"])
    assert pid in page.inner_text("#children")
    assert "Restarts since start: 0 · pool rebuilds: 0" in page.inner_text("main")
    for sentiment, n in stats["distribution"].items():
        assert page.inner_text(f'[data-count="{sentiment}"]') == str(n)
    page.wait_for_selector("#live-status.on", timeout=WAIT_MS)
    page.screenshot(path=str(shots / "dashboard-overview.png"), full_page=True)

    [new_id] = ingest(
        site,
        {
            "source": "dash",
            "external_id": "4",
            "text": "Breaking: rates cut by half a point",
            "published_at": "2025-05-03T12:00:00Z",
        },
    )
    row = page.wait_for_selector(f'#live-rows tr[data-id="{new_id}"]', timeout=WAIT_MS)
    page.wait_for_function(
        "id => document.querySelector(`#live-rows tr[data-id='${id}']`).textContent"
        ".includes('rates cut')",
        arg=new_id,
        timeout=WAIT_MS,
    )
    assert row.query_selector("a").inner_text() == str(new_id)
    assert page.inner_text("#total-classified") == "4"  # no reload happened
    page.screenshot(path=str(shots / "dashboard-overview-live.png"), full_page=True)

    phone = page.context.browser.new_context(
        base_url=site.base_url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    small = phone.new_page()
    small.goto("/")
    # Against the viewport's 390 px: on a mobile viewport window.innerWidth grows with the
    # content, so comparing with it could never fail.
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= 391, f"the overview is {width} px wide on a 390 px phone"
    small.screenshot(path=str(shots / "dashboard-overview-phone.png"), full_page=True)
    phone.close()


def test_posts_page_filters_searches_and_opens_a_post(page: Any, site: Served, shots: Path) -> None:
    word = "w" + uuid.uuid4().hex[:8]
    others = [
        {"source": "dash", "external_id": f"{word}-{n}", "text": f"Bonds {n}"} for n in range(5)
    ]
    [content_id, *_] = ingest(
        site, {"source": "dash", "external_id": word, "text": f"Oil {word} slides again"}, *others
    )
    detail = eventually(
        lambda: (httpx.get(f"{site.base_url}/api/v1/posts/{content_id}").json() or {}).get(
            "classification"
        ),
        timeout=DEADLINE,
        interval=0.2,
    )
    page.goto("/posts")
    assert page.locator("#live-rows tr").count() >= 5
    page.fill("input[name=q]", word)
    page.select_option("select[name=sentiment]", detail["sentiment"])
    page.click("form.filters button")
    page.wait_for_url(re.compile(rf".*q={word}.*"))
    rows = page.locator("#live-rows tr")
    assert rows.count() == 1
    assert detail["sentiment"] in rows.first.inner_text()
    page.screenshot(path=str(shots / "dashboard-posts.png"), full_page=True)

    page.click(f"a[href='/posts/{content_id}']")
    page.wait_for_url(f"**/posts/{content_id}")
    assert page.inner_text("h1") == f"Post {content_id}"
    assert f"Oil {word} slides again" in page.inner_text(".post-text")
    bars = page.locator(".prob")
    assert bars.count() == 3
    for i in range(3):
        name = bars.nth(i).locator(".name").inner_text()
        shown = float(bars.nth(i).locator(".num").inner_text())
        assert shown == pytest.approx(detail["probabilities"][name], abs=1e-3)
    assert detail["model_version"] in page.inner_text("dl")
    assert "Truncated" in page.inner_text("dl")
    assert "classified" in page.locator("table").last.inner_text()  # the job's attempt
    assert "Quarantined" not in page.inner_text("main")  # only a quarantined post says so
    page.screenshot(path=str(shots / "dashboard-post.png"), full_page=True)


def test_jobs_page_shows_a_failure_and_retry_fixes_it(
    page: Any, site: Served, shots: Path, conn: psycopg.Connection[Any]
) -> None:
    source = conn.execute(  # its own source: tests of a module may run in any process
        "INSERT INTO sources (name) VALUES ('dash') "
        "ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id"
    ).fetchone()
    assert source is not None
    lost = conn.execute(
        "INSERT INTO contents (source_id, external_id, text) VALUES (%s, 'lost', 'Gold rises') "
        "RETURNING id",
        (source["id"],),
    ).fetchone()
    assert lost is not None
    content_id = lost["id"]
    conn.execute("DELETE FROM contents WHERE id = %s", (content_id,))
    [job_id] = enqueue(conn, [content_id]).queued.values()

    def job_state() -> str:
        jobs = httpx.get(site.base_url + "/api/v1/jobs", params={"limit": 200}).json()["jobs"]
        return next(j["status"] for j in jobs if j["id"] == job_id)

    eventually(lambda: job_state() == "failed", timeout=DEADLINE, interval=0.2)
    page.goto("/jobs?state=failed")
    row = page.locator(f"#job-{job_id}")
    assert "failed" in row.inner_text()
    assert f"ContentNotFound: content {content_id} not found" in row.locator("pre").inner_text()
    assert page.inner_text('[data-state-count="failed"]') == "1"
    assert f"ContentNotFound: content {content_id} not found" in page.inner_text("table.failures")
    page.screenshot(path=str(shots / "dashboard-jobs-failed.png"), full_page=True)

    row.locator("button", has_text="Retry").click()  # no token yet: the button asks to log in
    page.wait_for_url("**/login")
    page.fill("input[name=token]", TOKEN)
    page.click("form button")
    page.wait_for_url("**/jobs")

    conn.execute(
        "INSERT INTO contents (id, source_id, external_id, text) VALUES (%s, %s, 'lost', "
        "'Gold rises')",
        (content_id, source["id"]),
    )
    page.goto("/jobs?state=failed")
    page.locator(f"#job-{job_id} button", has_text="Retry").click()
    page.wait_for_url("**/jobs?state=failed")

    def shows_succeeded() -> bool:
        page.goto("/jobs")
        return "succeeded" in page.locator(f"#job-{job_id}").inner_text()

    eventually(shows_succeeded, timeout=DEADLINE, interval=0.5)
    page.screenshot(path=str(shots / "dashboard-jobs.png"), full_page=True)
    page.goto(f"/posts/{content_id}")
    attempts = page.locator("table").last.inner_text()
    assert "ContentNotFound" in attempts and "classified" in attempts


def test_jobs_page_shows_the_last_change_and_labels_a_scheduled_time(
    page: Any, site: Served, shots: Path, conn: psycopg.Connection[Any]
) -> None:
    [post] = insert_posts(conn, ["Rates decision tomorrow"])
    before = datetime.now(UTC)
    [job_id] = enqueue(conn, [post], schedule_in=3600).queued.values()  # runs in an hour

    [listed] = [
        j
        for j in httpx.get(site.base_url + "/api/v1/jobs", params={"state": "todo"}).json()["jobs"]
        if j["id"] == job_id
    ]
    updated = datetime.fromisoformat(listed["updated_at"])
    assert before - timedelta(seconds=5) <= updated <= datetime.now(UTC)
    assert datetime.fromisoformat(listed["scheduled_at"]) >= before + timedelta(minutes=59)

    page.goto("/jobs?state=todo")
    row = page.locator(f"#job-{job_id}")
    shown = row.locator("time").first.get_attribute("datetime")
    assert shown is not None
    assert datetime.fromisoformat(shown) <= datetime.now(UTC), "updated is the last change"
    scheduled = row.locator(".scheduled")
    assert scheduled.inner_text().startswith("scheduled for ")
    when = scheduled.locator("time").get_attribute("datetime")
    assert when is not None and datetime.fromisoformat(when) >= before + timedelta(minutes=59)
    page.screenshot(path=str(shots / "dashboard-jobs-scheduled.png"), full_page=True)
