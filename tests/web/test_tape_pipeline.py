"""The signal tape and the pipeline page: their numbers over HTTP against numbers computed
here from rows written by plain SQL, and what a person sees in a real browser (chromium).

The server runs without a job worker: each signal is a classification row inserted by SQL,
as another application would store it, and reaches the page through the real NOTIFY, hub and
event stream. With VOLFEFE_DOCS_SHOTS=1 the browser tests also write the screenshots of
docs/images/ (tape.png, pipeline-degraded.png).
"""

from __future__ import annotations

import os
import statistics
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import ROOT
from tests.web.conftest import Serve, Served
from tests.web.test_dashboard import WAIT_MS, browser  # noqa: F401  (the fixture)
from volfefe.jobs.queue import QUEUE, enqueue

pytestmark = pytest.mark.db

T0 = datetime(2020, 1, 6, 9, 0, tzinfo=UTC)  # a past hour nothing else writes into
DOCS_SHOTS = os.environ.get("VOLFEFE_DOCS_SHOTS") == "1"


@pytest.fixture(scope="module")
def server(serve: Serve, web_database_url: str) -> Served:
    """A server without a job worker, on this module's database."""
    return serve(web_database_url)


@pytest.fixture
def page(browser: Any, server: Served) -> Iterator[Any]:  # noqa: F811
    """A fresh laptop-sized page on the server."""
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def shoot(page: Any, name: str, tmp_path: Path) -> None:
    """A full-page screenshot in the test's folder, and in docs/images/ when asked."""
    page.screenshot(path=str(tmp_path / name), full_page=True)
    if DOCS_SHOTS:
        page.screenshot(path=str(ROOT / "docs" / "images" / name), full_page=True)


def signal(
    conn: psycopg.Connection[Any],
    source: str,
    text: str,
    sentiment: str,
    confidence: float,
    *,
    author: str | None = None,
    arrived: datetime | None = None,
    latency: float = 0.25,
    tokens: int | None = 12,
) -> int:
    """A post and its classification, stored by plain SQL; returns the classification id."""
    arrived = arrived or datetime.now(UTC)
    row = conn.execute(
        """
        WITH s AS (
            INSERT INTO sources (name) VALUES (%(source)s)
            ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id
        ), c AS (
            INSERT INTO contents (source_id, external_id, author, text, published_at,
                                  inserted_at, classified)
            SELECT s.id, %(ext)s, %(author)s, %(text)s, %(arrived)s, %(arrived)s, true FROM s
            RETURNING id
        )
        INSERT INTO classifications (content_id, sentiment, confidence, model_version, meta,
                                     inserted_at, updated_at)
        SELECT c.id, %(sentiment)s, %(confidence)s, 'test-model', %(meta)s, %(done)s, %(done)s
        FROM c RETURNING id
        """,
        {
            "source": source,
            "ext": uuid.uuid4().hex,
            "author": author,
            "text": text,
            "arrived": arrived,
            "sentiment": sentiment,
            "confidence": confidence,
            "meta": Jsonb({"tokens": tokens} if tokens is not None else {}),
            "done": arrived + timedelta(seconds=latency),
        },
    ).fetchone()
    assert row is not None
    return int(row["id"])


def percentile(values: list[float], q: float) -> float:
    """PostgreSQL's percentile_cont: linear between the two nearest ranks."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def test_tape_api_filters_pages_and_refuses_bad_input(
    server: Served, conn: psycopg.Connection[Any]
) -> None:
    source = "tape-" + uuid.uuid4().hex[:6]
    ids = [
        signal(conn, source, "Oil rallies on supply cut", "positive", 0.93, author="Ann Lee"),
        signal(conn, source, "Tariffs hit exporters", "negative", 0.71, author="Bob"),
        signal(conn, source, "Meeting on Tuesday", "neutral", 0.55, author="ann"),
        signal(conn, source + "-x", "Oil slides", "negative", 0.99, author="Cy", tokens=300),
    ]
    base = server.base_url + "/api/v1/tape"

    def found(**query: Any) -> list[int]:
        body = httpx.get(base, params={"source": source, **query}).json()
        return [s["id"] for s in body["signals"]]

    assert found() == ids[2::-1]  # newest first, the other source left out
    assert found(sentiment="negative") == [ids[1]]
    assert found(min_confidence="0.7") == [ids[1], ids[0]]
    assert found(author="ANN") == [ids[2], ids[0]]
    assert found(q="oil") == [ids[0]]
    assert found(q="%") == []  # LIKE's wildcards are taken literally
    assert found(after=str(ids[0])) == [ids[2], ids[1]]
    first = httpx.get(base, params={"source": source, "limit": "2"}).json()
    assert [s["id"] for s in first["signals"]] == [ids[2], ids[1]]
    assert found(before=str(first["next_cursor"])) == [ids[0]]

    [row] = httpx.get(base, params={"after": ids[3] - 1, "before": ids[3] + 1}).json()["signals"]
    assert row["source"] == source + "-x" and row["author"] == "Cy" and row["tokens"] == 300
    assert row["latency_s"] == pytest.approx(0.25, abs=1e-3)
    assert datetime.fromisoformat(row["classified_at"]) - datetime.fromisoformat(
        row["arrived_at"]
    ) == timedelta(seconds=0.25)

    for query in ({"sentiment": "great"}, {"min_confidence": "2"}, {"limit": "0"}, {"q": "a\0"}):
        for path in ("/api/v1/tape", "/tape"):
            response = httpx.get(server.base_url + path, params=query)
            assert response.status_code == 422, (path, query)
            assert response.json()["error"]["type"] == "InvalidRequest"


def test_pipeline_numbers_match_the_rows(server: Served, conn: psycopg.Connection[Any]) -> None:
    # classifications in the hour from T0: latency grows with the minute, three length classes
    made: list[tuple[datetime, float, int]] = []
    for minute in range(0, 60, 3):
        latency = 0.1 + minute / 10
        tokens = (10, 100, 400)[(minute // 3) % 3]
        made.append((T0 + timedelta(minutes=minute), latency, tokens))
        signal(
            conn,
            "pipeline-test",
            f"post {minute}",
            "neutral",
            0.5,
            arrived=T0 + timedelta(minutes=minute),
            latency=latency,
            tokens=tokens,
        )
    # the job log of three jobs, written as procrastinate writes it
    jobs = conn.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, args) "
        "SELECT %(queue)s, 'volfefe.classify_post', jsonb_build_object('content_id', -n) "
        "FROM generate_series(1, 3) AS n RETURNING id",
        {"queue": QUEUE},
    ).fetchall()
    a, b, c = (row["id"] for row in jobs)
    conn.execute(  # the states the script below ends in: b waits (retried), a and c are done
        "UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = ANY(%s)", ([a, c],)
    )
    script = [
        (a, "deferred", 1), (b, "deferred", 2), (c, "deferred", 3),
        (a, "started", 5), (a, "succeeded", 6),
        (b, "started", 7), (b, "deferred_for_retry", 8), (b, "started", 13), (b, "failed", 14),
        (c, "started", 21), (b, "retried", 30), (c, "succeeded", 33),
    ]  # fmt: skip
    conn.execute("DELETE FROM procrastinate_events WHERE job_id = ANY(%s)", ([a, b, c],))
    for job, kind, minute in script:
        conn.execute(
            "INSERT INTO procrastinate_events (job_id, type, at) VALUES (%s, %s, %s)",
            (job, kind, T0 + timedelta(minutes=minute, seconds=10)),
        )

    until = T0 + timedelta(hours=1)
    query = {"since": T0.isoformat(), "until": until.isoformat(), "bucket": "2m"}
    body = httpx.get(server.base_url + "/api/v1/pipeline", params=query).json()
    assert datetime.fromisoformat(body["range"]["since"]) == T0
    assert body["range"]["bucket_s"] == 120

    def expect(rows: list[tuple[datetime, float, int]]) -> dict[str, Any]:
        values = [latency for _, latency, _ in rows]
        return {
            "classified": len(values),
            "p50_s": pytest.approx(percentile(values, 0.5), abs=1e-6),
            "p99_s": pytest.approx(percentile(values, 0.99), abs=1e-6),
            "max_s": pytest.approx(max(values), abs=1e-6),
        }

    classes = {"short": (0, 64), "medium": (65, 256), "long": (257, 10**6)}
    for name, (low, high) in classes.items():
        assert body["latency"][name] == expect([r for r in made if low <= r[2] <= high]), name
    assert body["latency"]["all"] == expect(made)
    assert body["latency"]["unknown"]["classified"] == 0
    assert statistics.median(r[1] for r in made) == pytest.approx(body["latency"]["all"]["p50_s"])

    # each job's state at the end of each two-minute bucket, replayed from the script
    buckets = body["buckets"]
    assert len(buckets) == 30
    after = {"deferred": "todo", "started": "doing", "deferred_for_retry": "todo",
             "succeeded": "done", "failed": "done", "retried": "todo"}  # fmt: skip
    for i, bucket in enumerate(buckets):
        start = T0 + timedelta(minutes=2 * i)
        assert datetime.fromisoformat(bucket["start"]) == start
        end = start + timedelta(minutes=2)
        inside = [r for r in made if start <= r[0] + timedelta(seconds=r[1]) < end]
        assert bucket["classified"] == len(inside), start
        state: dict[int, str] = {}
        for job, kind, minute in script:
            if T0 + timedelta(minutes=minute, seconds=10) < end:
                state[job] = after[kind]
        assert bucket["waiting"] == sum(s == "todo" for s in state.values()), start
        assert bucket["running"] == sum(s == "doing" for s in state.values()), start
        failed = [
            s for s in script if s[1] == "failed" and start <= T0 + timedelta(minutes=s[2]) < end
        ]
        assert bucket["failed"] == len(failed), start
    assert body["jobs"]["failed_in_range"] == 1
    assert sum(b["retries"] for b in buckets) == 1

    # now: job b waits since 2020, so the backlog check fails, first in the list
    assert body["jobs"]["waiting"] >= 1
    assert body["status"] == "degraded"
    backlog = body["checks"][0]
    assert backlog["name"] == "backlog" and not backlog["ok"] and "oldest" in backlog["detail"]
    conn.execute("UPDATE procrastinate_jobs SET status = 'cancelled' WHERE id = %s", (b,))
    again = httpx.get(server.base_url + "/api/v1/pipeline", params={"range": "15m"}).json()
    assert next(c for c in again["checks"] if c["name"] == "backlog")["ok"]
    assert datetime.fromisoformat(again["computed_at"]) <= datetime.now(UTC)
    assert again["buckets"][-1]["waiting"] == 0  # the cancel took b out of the backlog
    conn.execute("DELETE FROM procrastinate_jobs WHERE id = ANY(%s)", ([a, b, c],))  # a prune

    for bad in ({"range": "2h"}, {"until": "yesterday"}, {"until": "0001-01-01"}):
        response = httpx.get(server.base_url + "/api/v1/pipeline", params=bad)
        assert response.status_code == 422, bad
        assert response.json()["error"]["type"] == "InvalidRequest"
    assert httpx.get(server.base_url + "/pipeline", params={"range": "2h"}).status_code == 422


def test_tape_receives_signals_live_and_filters_them_without_reload(
    page: Any, server: Served, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    source = "desk-" + uuid.uuid4().hex[:6]
    old = signal(conn, source, "Gold steady ahead of the data", "neutral", 0.61, author="Dee")
    page.goto("/tape")
    assert page.inner_text("h1") == "Signal tape"
    page.wait_for_selector("#live-status.on", timeout=WAIT_MS)
    page.evaluate("window.notReloaded = true")
    assert page.locator(f'#tape-rows tr[data-id="{old}"]').is_visible()

    long_text = "Stocks soar as the trade deal is signed. " * 5
    up = signal(conn, source, long_text, "positive", 0.95, author="Ann Lee", latency=1.5)
    row = page.locator(f'#tape-rows tr[data-id="{up}"]')
    row.wait_for(timeout=WAIT_MS)
    text = row.inner_text()
    assert "positive" in text and "0.95" in text and source in text and "Ann Lee" in text
    assert "1.5 s" in text  # arrival to signal
    details = row.locator("details")
    assert not details.evaluate("d => d.open")
    details.locator("summary").focus()
    page.keyboard.press("Enter")  # the keyboard opens the full text
    assert details.evaluate("d => d.open")
    assert page.locator(f'#tape-rows tr[data-id="{up}"] .full').inner_text().strip() == (
        long_text.strip()
    )

    page.select_option("#tape-filters select[name=sentiment]", "negative")
    page.locator(f'#tape-rows tr[data-id="{up}"]').wait_for(state="hidden")
    assert page.locator(f'#tape-rows tr[data-id="{old}"]').is_hidden()
    assert "sentiment=negative" in page.url  # a reload keeps the filter
    down = signal(conn, source, "Tariffs hit exporters", "negative", 0.82, author="Bob")
    page.locator(f'#tape-rows tr[data-id="{down}"]').wait_for(timeout=WAIT_MS)
    late_up = signal(conn, source, "Rates cut", "positive", 0.9, author="Ann Lee")
    page.locator(f'#tape-rows tr[data-id="{late_up}"]').wait_for(state="attached", timeout=WAIT_MS)
    assert page.locator(f'#tape-rows tr[data-id="{late_up}"]').is_hidden()  # arrived filtered

    page.select_option("#tape-filters select[name=sentiment]", "")
    page.fill("#tape-filters input[name=author]", "ann")
    for shown in (up, late_up):
        page.locator(f'#tape-rows tr[data-id="{shown}"]').wait_for(state="visible")
    for hidden in (old, down):
        assert page.locator(f'#tape-rows tr[data-id="{hidden}"]').is_hidden()
    page.fill("#tape-filters input[name=author]", "")
    page.fill("#tape-filters input[name=min_confidence]", "0.9")
    page.fill("#tape-filters input[name=q]", "rates")
    page.locator(f'#tape-rows tr[data-id="{late_up}"]').wait_for(state="visible")
    assert page.locator(f'#tape-rows tr[data-id="{up}"]').is_hidden()
    assert (
        page.inner_text("#tape-count") == f"{page.locator('#tape-rows tr:visible').count()} shown"
    )
    page.fill("#tape-filters input[name=q]", "")
    page.fill("#tape-filters input[name=min_confidence]", "")
    page.select_option("#tape-filters select[name=source]", source)
    page.locator(f'#tape-rows tr[data-id="{old}"]').wait_for(state="visible")
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#tape-rows tr:visible").count() == 4
    shoot(page, "tape.png", tmp_path)

    phone = page.context.browser.new_context(
        base_url=server.base_url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    small = phone.new_page()
    for path in ("/tape", "/pipeline"):
        small.goto(path)
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= 391, f"{path} is {width} px wide on a 390 px phone"
        small.screenshot(path=str(tmp_path / f"phone{path.replace('/', '-')}.png"), full_page=True)
    phone.close()


def test_tape_filters_work_without_javascript(
    browser: Any,  # noqa: F811
    server: Served,
    conn: psycopg.Connection[Any],
) -> None:
    source = "nojs-" + uuid.uuid4().hex[:6]
    keep = signal(conn, source, "Bonds bid", "negative", 0.88, author="Eve")
    drop = signal(conn, source, "Bonds offered", "positive", 0.88, author="Eve")
    context = browser.new_context(base_url=server.base_url, java_script_enabled=False)
    plain = context.new_page()
    plain.goto(f"/tape?source={source}")
    assert plain.locator("#tape-rows tr").count() == 2
    plain.select_option("select[name=sentiment]", "negative")
    plain.click("#tape-filters button")
    plain.wait_for_url("**sentiment=negative**")
    ids = plain.locator("#tape-rows tr").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert ids == [str(keep)] and str(drop) not in ids
    plain.goto(f"/tape?source={source}&q=nothing-like-it")
    assert plain.locator("#tape-rows tr").count() == 0
    assert plain.locator("#tape-empty").is_visible()
    context.close()


def test_pipeline_page_says_ok_then_why_it_is_degraded(
    page: Any, server: Served, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    conn.execute("UPDATE procrastinate_jobs SET status = 'cancelled' WHERE status = 'todo'")
    now = datetime.now(UTC)
    for i in range(40):  # an hour of traffic, for the charts
        signal(
            conn,
            "pipeline-page",
            f"Fed holds {i}",
            ("neutral", "positive", "negative")[i % 3],
            0.7,
            arrived=now - timedelta(minutes=58) + timedelta(seconds=85 * i),
            latency=0.2 + (i % 7) * 0.3,
            tokens=(12, 90, 300)[i % 3],
        )
    page.goto("/pipeline")
    assert page.inner_text("h1") == "Pipeline"
    assert page.inner_text("#status") == "OK", page.inner_text("#verdict")
    computed = page.locator("#pipeline").get_attribute("data-computed-at")
    assert computed is not None and datetime.fromisoformat(computed) <= datetime.now(UTC)
    assert page.locator('tr[data-length="short"] td').first.inner_text() != "0"
    assert page.inner_text("#restarts") == "0" and page.inner_text("#rebuilds") == "0"
    page.wait_for_function("document.getElementById('pipeline-age').textContent.includes('s ago')")
    page.screenshot(path=str(tmp_path / "pipeline.png"), full_page=True)

    [post] = conn.execute(
        "INSERT INTO contents (source_id, external_id, text) "
        "SELECT id, %s, 'Lost' FROM sources WHERE name = 'pipeline-page' RETURNING id",
        (uuid.uuid4().hex,),
    ).fetchall()
    [job] = enqueue(conn, [post["id"]]).queued.values()
    conn.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (job,))
    conn.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", (job,))
    page.goto("/pipeline")
    assert page.inner_text("#status") == "Degraded"
    check = page.locator('[data-check="failed jobs"]')
    assert "degraded" in check.inner_text() and "1 failed" in check.inner_text()
    check.locator("a").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("location.hash === '#failures'")
    assert page.inner_text("#jobs-failed") == "1"
    shoot(page, "pipeline-degraded.png", tmp_path)
    conn.execute("UPDATE procrastinate_jobs SET status = 'cancelled' WHERE id = %s", (job,))
