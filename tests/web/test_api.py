"""The JSON API of `volfefe serve`, driven over HTTP against a real server process."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx
import psycopg
import psycopg.conninfo
import psycopg.sql
import pytest

from tests.helpers import eventually
from tests.store.helpers import incompressible
from tests.web.conftest import TOKEN, Serve, Served
from volfefe.jobs.queue import record_attempt
from volfefe.result import Classification
from volfefe.store.connect import connect
from volfefe.store.importer import MAX_KEY_BYTES
from volfefe.store.posts import save_classification
from volfefe.store.switches import set_auto_enqueue
from volfefe.web.app import routes
from volfefe.web.openapi import SPEC

pytestmark = pytest.mark.db

LIMITS = {
    "VOLFEFE_API_MAX_ITEMS": "8",
    "VOLFEFE_API_MAX_BODY": "65536",
    "VOLFEFE_API_MAX_TEXT_CHARS": "5000",
}


@pytest.fixture(scope="module")
def server(serve: Serve, web_database_url: str) -> Served:
    """One server (with a token and small limits) for the tests of this module."""
    return serve(web_database_url, **LIMITS)


def tag() -> str:
    """A word no other test uses, to find this test's posts."""
    return "w" + uuid.uuid4().hex[:10]


def post(
    source: str, external_id: str, text: str, published_at: str | None = None
) -> dict[str, Any]:
    """One post as the API takes it."""
    return {
        "source": source,
        "external_id": external_id,
        "text": text,
        "published_at": published_at,
    }


def ingest(api: httpx.Client, *posts: dict[str, Any]) -> dict[str, Any]:
    """POST the posts and return the report (asserting 200)."""
    response = api.post("/api/v1/posts", json={"posts": list(posts)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def classify_stored(
    conn: psycopg.Connection[Any], content_id: int, sentiment: str, p: float
) -> int:
    """Store a classification the way a job does; returns the classification id."""
    rest = (1 - p) / 2
    scores = {s: (p if s == sentiment else rest) for s in ("positive", "negative", "neutral")}
    stored = save_classification(conn, content_id, Classification(sentiment, p, "m@1", scores))
    return stored.id


def test_health_ready_and_openapi_covers_every_route(server: Served) -> None:
    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {
            "database": "ok",
            "schema": "ok",
            "classifier": "ok",
            "notifications": "ok",
        }
        spec = client.get("/api/v1/openapi.json").json()
    assert spec == SPEC
    documented = {path.replace("{id}", "{id:int}") for path in spec["paths"]}
    served = {r.path for r in routes() if getattr(r, "path", "").startswith("/api/v1/")}
    assert served - {"/api/v1/openapi.json"} == documented


def test_classify_answers_each_text_in_order(api: httpx.Client) -> None:
    response = api.post("/api/v1/classify", json={"texts": ["Stocks rally", "  ", "Tariffs hit"]})
    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 3
    for result in (results[0], results[2]):
        assert result["sentiment"] in ("positive", "negative", "neutral")
        assert set(result["meta"]["raw_scores"]) == {"positive", "negative", "neutral"}
        assert result["model_version"].startswith("tiny-model")
    assert results[1]["error"]["type"] == "NoTextError"


def test_write_routes_need_the_token_and_the_log_never_shows_it(server: Served) -> None:
    wrong = "wrong-token-that-must-not-be-logged"
    with server.client() as anonymous, server.client(wrong) as impostor:
        for client in (anonymous, impostor):
            for path, body in (
                ("/api/v1/classify", {"texts": ["x"]}),
                ("/api/v1/posts", {"posts": []}),
                ("/api/v1/jobs/1/retry", None),
                ("/api/v1/jobs/1/cancel", None),
            ):
                response = client.post(path, json=body)
                assert response.status_code == 401, path
                assert response.json()["error"]["type"] == "Unauthorized"
        assert anonymous.get("/api/v1/posts").status_code == 200  # reads are open
    eventually(lambda: "401 for POST /api/v1/jobs/1/cancel" in server.log())
    assert wrong not in server.log()
    assert TOKEN not in server.log()


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 422, "InvalidRequest"),
        (b'{"text": "x"}', 422, "InvalidRequest"),
        (b'{"texts": []}', 422, "InvalidRequest"),
        (b'{"texts": ["ok", 3]}', 422, "InvalidRequest"),
        (b'{"texts": ["a","b","c","d","e","f","g","h","i"]}', 413, "RequestTooLarge"),
        (b'{"texts": ["' + b"x" * 5001 + b'"]}', 413, "RequestTooLarge"),
        (b'{"texts": ["' + b"x " * 40000 + b'"]}', 413, "RequestTooLarge"),
    ],
)
def test_bad_classify_bodies_get_a_named_error(
    api: httpx.Client, body: bytes, status: int, error: str
) -> None:
    response = api.post(
        "/api/v1/classify", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert response.json()["error"]["type"] == error
    assert response.json()["error"]["message"]


BEYOND_BIGINT = "99999999999999999999"


@pytest.mark.parametrize(
    ("method", "url", "status", "error"),
    [
        ("GET", "/api/v1/posts?q=%00", 422, "InvalidRequest"),
        ("GET", "/posts?q=tariff%00s", 422, "InvalidRequest"),
        ("GET", "/api/v1/jobs?state=%00", 422, "InvalidRequest"),
        ("GET", f"/api/v1/posts?cursor={BEYOND_BIGINT}", 422, "InvalidRequest"),
        ("GET", f"/api/v1/jobs?cursor={BEYOND_BIGINT}", 422, "InvalidRequest"),
        ("GET", f"/api/v1/posts/{BEYOND_BIGINT}", 404, "ContentNotFound"),
        ("GET", f"/posts/{BEYOND_BIGINT}", 404, "ContentNotFound"),
        ("POST", f"/api/v1/jobs/{BEYOND_BIGINT}/cancel", 404, "JobNotFound"),
        ("POST", f"/api/v1/jobs/{BEYOND_BIGINT}/retry", 404, "JobNotFound"),
        ("GET", f"/api/v1/stream?after={BEYOND_BIGINT}", 422, "InvalidRequest"),
    ],
)
def test_a_nul_byte_or_an_id_beyond_bigint_is_a_named_error_not_a_500(
    api: httpx.Client, method: str, url: str, status: int, error: str
) -> None:
    with api.stream(method, url) as response:  # a stream that was let through would never end
        assert response.status_code == status
        response.read()
    assert response.json()["error"]["type"] == error
    assert response.json()["error"]["message"]


def test_ingest_is_idempotent_reports_rows_and_queues_in_the_same_transaction(
    api: httpx.Client, conn: psycopg.Connection[Any]
) -> None:
    source = tag()
    report = ingest(
        api,
        post(source, "1", "Fed cuts rates", "2025-03-01T10:00:00Z"),
        {"source": source},
        post(source, "2", "", None),
        post(source, "3", "Oil slides", "yesterday"),
    )
    assert (report["inserted"], report["updated"], report["unchanged"]) == (2, 0, 0)
    assert report["queued"] == 1  # the empty post is stored, never queued
    assert [r["index"] for r in report["rejected"]] == [1, 3]
    assert report["rejected"][0]["error"] == {
        "type": "InvalidPost",
        "message": "missing external_id",
    }
    first = report["posts"][0]
    assert first["index"] == 0
    job = conn.execute(
        "SELECT status::text AS status, (args->>'content_id')::bigint AS content_id "
        "FROM procrastinate_jobs WHERE id = %s",
        (first["job_id"],),
    ).fetchone()
    assert job == {"status": "todo", "content_id": first["id"]}

    again = ingest(api, post(source, "1", "Fed cuts rates", "2025-03-01T10:00:00Z"))
    assert (again["inserted"], again["unchanged"], again["queued"]) == (0, 1, 0)
    assert again["posts"] == [{"index": 0, "id": first["id"], "job_id": None}]
    one = api.post("/api/v1/posts", json=post(source, "9", "A single object", None))
    assert one.json()["inserted"] == 1


def test_ingest_rejects_an_over_long_key_and_stores_the_other_rows(
    api: httpx.Client, conn: psycopg.Connection[Any]
) -> None:
    source = tag()
    long_id = incompressible(3000, seed=0)
    response = api.post(
        "/api/v1/posts",
        json={"posts": [post(source, "1", "Oil slides"), post(source, long_id, "Fed cuts")]},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["inserted"] == 1
    assert report["rejected"] == [
        {
            "index": 1,
            "error": {
                "type": "FieldTooLong",
                "message": "external_id is 3,000 bytes long in UTF-8, over the limit of "
                f"{MAX_KEY_BYTES:,} bytes",
            },
        }
    ]
    stored = conn.execute(
        "SELECT c.external_id FROM contents c JOIN sources s ON s.id = c.source_id "
        "WHERE s.name = %s",
        (source,),
    ).fetchall()
    assert stored == [{"external_id": "1"}]


def test_ingest_names_the_job_the_auto_enqueue_trigger_queued(
    api: httpx.Client, conn: psycopg.Connection[Any]
) -> None:
    source = tag()
    set_auto_enqueue(conn, True)
    try:
        report = ingest(api, post(source, "1", "Fed cuts rates"), post(source, "2", ""))
    finally:
        set_auto_enqueue(conn, False)
    assert report["queued"] == 1  # the empty post is stored, never queued
    first, empty = report["posts"]
    jobs = conn.execute(
        "SELECT id, status::text AS status FROM procrastinate_jobs "
        "WHERE (args->>'content_id')::bigint = %s",
        (first["id"],),
    ).fetchall()
    assert jobs == [{"id": first["job_id"], "status": "todo"}]
    assert empty["job_id"] is None


def test_posts_filters_search_and_cursor(api: httpx.Client, conn: psycopg.Connection[Any]) -> None:
    word = tag()
    rows = [
        (f"{word} rally one", "2025-01-01T10:00:00Z", "positive", 0.9),
        (f"{word} crash two", "2025-01-02T10:00:00Z", "negative", 0.6),
        (f"{word} flat three", "2025-01-03T10:00:00Z", "neutral", 0.95),
        (f"{word} rally four", "2025-01-04T10:00:00Z", "positive", 0.4),
        (f"{word} waiting five", "2025-01-05T10:00:00Z", None, None),
    ]
    report = ingest(api, *(post(word, str(i), r[0], r[1]) for i, r in enumerate(rows)))
    ids = [p["id"] for p in report["posts"]]
    for content_id, (_, _, sentiment, p) in zip(ids, rows, strict=True):
        if sentiment:
            classify_stored(conn, content_id, sentiment, p)

    def found(**query: Any) -> list[int]:
        response = api.get("/api/v1/posts", params={"q": word.upper(), **query})
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["posts"]]

    assert found() == ids[::-1]
    assert found(sentiment="positive") == [ids[3], ids[0]]
    assert found(min_confidence=0.9) == [ids[2], ids[0]]
    assert found(since="2025-01-02", until="2025-01-04") == [ids[2], ids[1]]
    assert found(quarantined="false") == ids[::-1]
    pages, cursor = [], None
    while True:
        params = {"q": word, "limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get("/api/v1/posts", params=params).json()
        pages.append([p["id"] for p in body["posts"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[0:1]]
    for query, error in (({"sentiment": "happy"}, "sentiment"), ({"min_confidence": "2"}, "min_")):
        response = api.get("/api/v1/posts", params=query)
        assert response.status_code == 422
        assert error in response.json()["error"]["message"]


def test_post_detail_has_probabilities_jobs_and_attempts(
    api: httpx.Client, conn: psycopg.Connection[Any]
) -> None:
    source = tag()
    report = ingest(api, post(source, "1", "Tariffs are coming", "2025-02-01T00:00:00Z"))
    content_id, job_id = report["posts"][0]["id"], report["posts"][0]["job_id"]
    record_attempt(conn, job_id, content_id, 1, "retrying", TimeoutError("the child hung"))
    classify_stored(conn, content_id, "negative", 0.8)
    body = api.get(f"/api/v1/posts/{content_id}").json()
    assert body["text"] == "Tariffs are coming"
    assert body["classification"]["sentiment"] == "negative"
    assert body["classification"]["probabilities"] == pytest.approx(
        {"negative": 0.8, "positive": 0.1, "neutral": 0.1}
    )
    assert body["classification"]["model_version"] == "m@1"
    assert body["classification"]["truncated"] is False
    assert body["quarantine"] is None
    # The stored result settled the waiting job (migration 0007).
    assert [(j["id"], j["status"]) for j in body["jobs"]] == [(job_id, "cancelled")]
    assert [(a["attempt"], a["outcome"], a["error"]) for a in body["attempts"]] == [
        (1, "retrying", "TimeoutError: the child hung"),
        (1, "already_classified", None),
    ]
    missing = api.get("/api/v1/posts/999999999")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "ContentNotFound"


def test_stats_and_timeline(api: httpx.Client, conn: psycopg.Connection[Any]) -> None:
    source = tag()
    report = ingest(
        api,
        post(source, "1", "up", "2024-06-01T10:15:00Z"),
        post(source, "2", "down", "2024-06-01T10:45:00Z"),
        post(source, "3", "flat", "2024-06-01T13:00:00Z"),
        post(source, "4", "waits"),
    )
    ids = [p["id"] for p in report["posts"]][:3]
    for content_id, sentiment, p in zip(
        ids, ("positive", "negative", "neutral"), (0.9, 0.7, 0.5), strict=True
    ):
        classify_stored(conn, content_id, sentiment, p)
    window = {"since": "2024-06-01T00:00:00Z", "until": "2024-06-02T00:00:00Z"}
    hours = api.get("/api/v1/timeline", params={"bucket": "hour", **window}).json()["buckets"]
    assert [(b["bucket"][11:13], b["positive"], b["negative"], b["neutral"]) for b in hours] == [
        ("10", 1, 1, 0),
        ("13", 0, 0, 1),
    ]
    assert hours[0]["mean_confidence"] == pytest.approx(0.8)
    days = api.get("/api/v1/timeline", params={"bucket": "day", **window}).json()["buckets"]
    assert len(days) == 1 and days[0]["mean_confidence"] == pytest.approx(0.7)
    assert api.get("/api/v1/timeline", params={"bucket": "week"}).status_code == 422

    stats = api.get("/api/v1/stats").json()
    assert stats["posts"]["classified"] >= 3
    assert stats["throughput"]["classified"] >= 3
    assert stats["backlog"] >= 1  # the fourth post's job waits: no worker runs in this module
    assert stats["oldest_waiting_s"] is not None
    [child] = stats["children"]
    assert child["pid"] > 0 and child["rss_bytes"] > 0 and child["uptime_s"] >= 0


def test_jobs_list_cancel_and_retry(api: httpx.Client, conn: psycopg.Connection[Any]) -> None:
    source = tag()
    report = ingest(api, post(source, "1", "Cancel me", None), post(source, "2", "Fail me", None))
    (cancel_job, fail_job) = (p["job_id"] for p in report["posts"])
    cancelled = api.post(f"/api/v1/jobs/{cancel_job}/cancel")
    assert cancelled.json() == {"id": cancel_job, "status": "cancelled"}
    again = api.post(f"/api/v1/jobs/{cancel_job}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "JobStateConflict"
    assert api.post("/api/v1/jobs/999999999/retry").status_code == 404

    # A failed job as a job worker leaves it (tests/jobs covers the worker doing it for real).
    conn.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = %s", (fail_job,))
    record_attempt(conn, fail_job, report["posts"][1]["id"], 1, "failed", ValueError("boom"))
    failed = api.get("/api/v1/jobs", params={"state": "failed"}).json()
    assert failed["counts"]["failed"] >= 1
    [row] = [j for j in failed["jobs"] if j["id"] == fail_job]
    assert row["error"] == "ValueError: boom"
    assert api.post(f"/api/v1/jobs/{fail_job}/retry").json() == {"id": fail_job, "status": "todo"}
    assert api.get("/api/v1/jobs", params={"state": "todo"}).json()["jobs"][0]["id"] == fail_job
    assert api.get("/api/v1/jobs", params={"state": "lost"}).status_code == 422


def test_stream_sends_each_classification_and_resumes_after_last_event_id(
    server: Served, api: httpx.Client, conn: psycopg.Connection[Any]
) -> None:
    source = tag()
    report = ingest(api, *(post(source, str(i), f"Post {i}", None) for i in range(3)))
    ids = [p["id"] for p in report["posts"]]
    events: list[dict[str, str]] = []
    connected = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", server.base_url + "/api/v1/stream", timeout=30.0) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            event: dict[str, str] = {}
            for line in response.iter_lines():
                if line.startswith("retry:"):  # the first line: the stream is subscribed
                    connected.set()
                    continue
                if not line:
                    if "data" in event:
                        events.append(event)
                    if len(events) == 2:
                        return
                    event = {}
                    continue
                name, _, value = line.partition(": ")
                event[name] = value

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert connected.wait(30)
    # The hub is listening before the response starts; two classifications arrive live.
    first = classify_stored(conn, ids[0], "positive", 0.9)
    second = classify_stored(conn, ids[1], "negative", 0.8)
    thread.join(30)
    assert [e["id"] for e in events] == [str(first), str(second)]
    assert events[0]["event"] == "classified"
    assert f'"content_id":{ids[0]}' in events[0]["data"]

    third = classify_stored(conn, ids[2], "neutral", 0.7)
    with httpx.stream(
        "GET",
        server.base_url + "/api/v1/stream",
        headers={"Last-Event-ID": str(first)},
        timeout=30.0,
    ) as response:
        seen = []
        for line in response.iter_lines():
            if line.startswith("id: "):
                seen.append(int(line[4:]))
                if seen[-1] == third:
                    break
    assert seen == [second, third]


def test_metrics_expose_latency_children_jobs_and_posts(server: Served, api: httpx.Client) -> None:
    api.post("/api/v1/classify", json={"texts": ["Rates up"]})
    text = httpx.get(server.base_url + "/metrics").text
    for name in (
        'volfefe_http_request_duration_seconds_bucket{le="0.005",method="POST",'
        'route="/api/v1/classify",status="200"}',
        "volfefe_classify_duration_seconds_count",
        "volfefe_classify_request_texts_sum",
        "volfefe_child_restarts_total 0.0",
        "volfefe_children 1.0",
        'volfefe_jobs{state="todo"}',
        'volfefe_posts{sentiment="positive"}',
        "volfefe_quarantined_posts",
        "volfefe_jobs_oldest_waiting_seconds",
    ):
        assert name in text, name
    # "Rates up" is a short post: its wait is counted in the short class, none in the others.
    assert 'volfefe_text_latency_seconds_count{length="short"} ' in text
    counts = {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("volfefe_text_latency_seconds_count{")
    }
    assert counts["short"] >= 1 and counts["medium"] == 0 and counts["long"] == 0, counts


def test_without_a_token_serve_listens_on_loopback_only_on_the_embedded_database(
    serve: Serve,
) -> None:
    local = serve(None, "--host", "0.0.0.0", token=None)
    log = local.log()
    assert "ignoring --host 0.0.0.0: no VOLFEFE_API_TOKEN is set" in log
    assert "listening on 127.0.0.1 only" in log
    with local.client() as client:
        response = client.post("/api/v1/classify", json={"texts": ["Open to local users"]})
        assert response.status_code == 200
        assert client.get("/readyz").json()["checks"]["schema"] == "ok"
    assert local.stop() == 0


def test_a_lost_database_answers_503_database_unavailable(serve: Serve, database_url: str) -> None:
    lost = serve(database_url)
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    admin = psycopg.conninfo.make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(psycopg.sql.Identifier(name))
        )
    with lost.client() as client:
        response = client.get("/api/v1/posts")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["error"]["type"] == "DatabaseUnavailable"
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
    assert lost.stop() == 0


def test_quarantine_shows_in_the_api_the_stats_and_the_post_page(
    serve: Serve, database_url: str
) -> None:
    site = serve(database_url)
    with site.client(TOKEN) as client:
        report = ingest(client, post("q", "1", "Poison text", None), post("q", "2", "Fine", None))
        poisoned, fine = (p["id"] for p in report["posts"])
        with connect(database_url) as c:
            c.execute(
                "UPDATE contents SET quarantined_at = now(), quarantine_reason = %s WHERE id = %s",
                ("crashed the child alone (killed by signal 9)", poisoned),
            )
        listed = client.get("/api/v1/posts", params={"quarantined": "true"}).json()["posts"]
        assert [p["id"] for p in listed] == [poisoned]
        assert listed[0]["quarantine"]["reason"] == "crashed the child alone (killed by signal 9)"
        others = client.get("/api/v1/posts", params={"quarantined": "false"}).json()["posts"]
        assert [p["id"] for p in others] == [fine]
        assert client.get("/api/v1/stats").json()["posts"]["quarantined"] == 1
        page = client.get(f"/posts/{poisoned}").text
        assert "Quarantined" in page and "crashed the child alone" in page
    assert site.stop() == 0


def test_pages_escape_post_content_and_forbid_foreign_scripts(api: httpx.Client) -> None:
    source = tag()
    report = ingest(
        api,
        {
            "source": source,
            "external_id": "x",
            "text": "<script>alert('x')</script> Stocks",
            "url": "javascript:alert(1)",
        },
    )
    content_id = report["posts"][0]["id"]
    page = api.get(f"/posts/{content_id}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert" in page.text
    assert 'href="javascript:' not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    listing = api.get("/posts", params={"q": source}).text
    assert "<script>alert" not in listing
