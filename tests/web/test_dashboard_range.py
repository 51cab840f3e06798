"""The overview's time range, index chart, live counts and themes in a real browser (Debian's
chromium driven by Playwright) against a real `volfefe serve`, with posts inserted by SQL.

`UPDATE_SCREENSHOTS=1` also writes the light and dark overview to
docs/images/dashboard-overview-{light,dark}.png, the pictures of docs/dashboard.md.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import ROOT
from tests.helpers import eventually
from tests.web.conftest import Serve, Served
from tests.web.test_dashboard import WAIT_MS, browser  # noqa: F401  (the chromium fixture)
from volfefe.store.connect import connect

pytestmark = pytest.mark.db

SENTIMENTS = ("positive", "negative", "neutral")
TEXTS = {  # what the screenshots' latest classifications say
    "positive": ("Stocks soar as the trade deal is signed", "Record jobs numbers, huge win"),
    "negative": ("Tariffs on steel will hurt exporters", "Rates too high, the Fed is late"),
    "neutral": ("The press briefing is at 1:00 PM", "Meeting with the governors Tuesday"),
}
NOW = datetime.now(UTC)
# Published 20 min, 5 h and 3 days ago: in 1 h, 24 h and 7 d respectively, none in 15 min;
# more than a bucket apart in each range (7 d has 3 h buckets), whatever the time of day.
AGES = (timedelta(minutes=20), timedelta(hours=5), timedelta(days=3))


@pytest.fixture(scope="module")
def site(serve: Serve, web_database_url: str) -> Served:
    """A server without a job worker: posts here are classified by SQL."""
    return serve(web_database_url)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go (kept with pytest's temporary folders)."""
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def source(web_database_url: str) -> str:
    """A source with one classified post at each of AGES, and a week of other posts."""
    name = "r" + uuid.uuid4().hex[:8]
    with connect(web_database_url) as conn:
        for age, sentiment in zip(AGES, SENTIMENTS, strict=True):
            insert(conn, name, NOW - age, sentiment, 0.9)
        week(conn)
    return name


def insert(
    conn: psycopg.Connection[Any],
    source: str,
    published_at: datetime,
    sentiment: str,
    p: float,
    text: str = "a post",
) -> None:
    """A post and its classification, straight into the tables."""
    conn.execute("INSERT INTO sources (name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (source,))
    conn.execute(
        """
        WITH post AS (
            INSERT INTO contents (source_id, external_id, text, published_at, classified)
            SELECT id, %s, %s, %s, true FROM sources WHERE name = %s RETURNING id
        )
        INSERT INTO classifications (content_id, sentiment, confidence, model_version)
        SELECT id, %s, %s, 'm@1' FROM post
        """,
        (uuid.uuid4().hex, text, published_at, source, sentiment, p),
    )


def week(conn: psycopg.Connection[Any]) -> None:
    """A week of posts for the screenshots, a quiet day and a half in the middle (a gap)."""
    rng = random.Random(29)
    for hour in range(7 * 24):
        if 70 <= hour < 106:
            continue
        mood = 0.6 if hour < 70 else -0.4
        for _ in range(rng.randint(0, 4)):
            roll = rng.random() + mood / 2
            sentiment = "positive" if roll > 0.65 else "negative" if roll < 0.35 else "neutral"
            when = NOW - timedelta(hours=hour, minutes=rng.randint(0, 59))
            p = round(rng.uniform(0.4, 1.0), 3)
            insert(conn, "sample", when, sentiment, p, rng.choice(TEXTS[sentiment]))


def context(browser: Any, site: Served, **options: Any) -> Any:  # noqa: F811
    """A laptop-sized browser context on the site."""
    return browser.new_context(
        base_url=site.base_url, viewport={"width": 1280, "height": 900}, **options
    )


@pytest.fixture
def page(browser: Any, site: Served) -> Iterator[Any]:  # noqa: F811
    """A fresh page with JavaScript."""
    ctx = context(browser, site)
    yield ctx.new_page()
    ctx.close()


def index_bars(page: Any) -> int:
    """How many buckets of the index chart have posts."""
    return int(page.locator("#index-chart rect:not(.volume)").count())


def test_choosing_a_range_changes_the_url_and_the_chart(
    page: Any, source: str, shots: Path
) -> None:
    page.goto(f"/?source={source}")
    assert page.inner_text(".presets [aria-current]") == "24 h"
    assert "per 15m" in page.text_content("#index-title")
    assert index_bars(page) == 2  # 20 min and 5 h ago

    page.click(".presets a:text-is('1 h')")
    page.wait_for_url(re.compile(r".*\?range=1h&source=" + source))
    assert page.inner_text(".presets [aria-current]") == "1 h"
    assert "per 1m" in page.text_content("#index-title")
    assert index_bars(page) == 1

    page.click(".presets a:text-is('7 d')")
    page.wait_for_url(re.compile(r".*\?range=7d&source=" + source))
    assert index_bars(page) == 3
    bar = page.locator("#index-chart rect.positive title").first.text_content()
    assert "index +0.900, 1 post" in bar  # one positive post at 0.9
    page.screenshot(path=str(shots / "range-7d.png"), full_page=True)

    since = (NOW - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    until = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    page.fill("input[name=since]", since)
    page.fill("input[name=until]", until)
    page.click(".custom-range button")
    page.wait_for_url(re.compile(r".*since=.*until=.*"))
    assert f"source={source}" in page.url
    assert index_bars(page) == 2  # 5 h and 3 days ago
    assert page.get_attribute(".custom-range button", "aria-current") == "true"
    csv = page.get_attribute("a:text-is('CSV')", "href")
    assert csv is not None and "format=csv" in csv and f"source={source}" in csv


def test_the_range_works_without_javascript(browser: Any, site: Served, source: str) -> None:  # noqa: F811
    ctx = context(browser, site, java_script_enabled=False)
    page = ctx.new_page()
    page.goto(f"/?range=7d&source={source}")
    assert index_bars(page) == 3
    page.click(".presets a:text-is('15 min')")
    page.wait_for_url(re.compile(r".*\?range=15m&source=" + source))
    assert index_bars(page) == 0
    assert "no classified post in this range" in page.inner_text("main")
    assert page.is_hidden("#stats-live")  # no script: the counts say when they were computed
    assert re.search(r"Counts as of \d\d:\d\d:\d\d UTC", page.inner_text("main"))

    page.fill("input[name=since]", (NOW - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=until]", "")
    page.click(".custom-range button")
    page.wait_for_url(re.compile(r".*since=.*"))
    assert index_bars(page) == 2
    ctx.close()


def test_every_count_updates_without_a_reload(
    page: Any, site: Served, conn: psycopg.Connection[Any]
) -> None:
    source = "l" + uuid.uuid4().hex[:8]  # not the other tests' source: they count its posts
    page.goto("/")
    page.wait_for_selector("#stats-live:not([hidden])", state="attached", timeout=WAIT_MS)
    before = int(page.inner_text("#total-posts"))
    insert(conn, source, NOW, "positive", 0.5)
    conn.execute(  # and one not classified yet
        "INSERT INTO contents (source_id, external_id, text) "
        "SELECT id, %s, 'waiting' FROM sources WHERE name = %s",
        (uuid.uuid4().hex, source),
    )
    page.wait_for_function(
        "n => document.getElementById('total-posts').textContent === String(n)",
        arg=before + 2,
        timeout=WAIT_MS,
    )
    stats = page.evaluate("fetch('/api/v1/stats').then(r => r.json())")
    eventually(
        lambda: page.inner_text("#total-unclassified") == str(stats["posts"]["unclassified"]),
        timeout=WAIT_MS / 1000,
        interval=0.5,
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_overview_follows_the_system_theme(
    browser: Any,  # noqa: F811
    site: Served,
    source: str,
    shots: Path,
    scheme: str,
) -> None:
    ctx = context(browser, site, color_scheme=scheme)
    page = ctx.new_page()
    page.goto("/?range=7d")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == {"light": "rgb(246, 248, 250)", "dark": "rgb(13, 17, 23)"}[scheme]
    assert index_bars(page) > 30
    headings = page.locator("main h2").all_inner_texts()
    assert headings[0] == "Totals"  # for screen readers; hidden on screen
    assert any(h.startswith("Sentiment index") for h in headings)
    shot = shots / f"dashboard-overview-{scheme}.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        (ROOT / "docs" / "images").mkdir(exist_ok=True)
        shutil.copy(shot, ROOT / "docs" / "images" / shot.name)
    ctx.close()
