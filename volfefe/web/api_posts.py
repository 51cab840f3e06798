"""Posts over HTTP: ingest (`POST /api/v1/posts`), a filtered page, and one post.

Ingest follows the importer's rules (`volfefe.store.importer.import_records`): idempotent on
`(source, external_id)`, an edited text resets the classification, bad rows are rejected one
by one with their index; the classification jobs of new or changed posts are queued in the
same transaction as the posts.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from volfefe.errors import ContentNotFound
from volfefe.jobs.queue import enqueue
from volfefe.result import SENTIMENTS
from volfefe.store.browse import PostFilter, get_post, list_posts
from volfefe.store.importer import import_records
from volfefe.web import params
from volfefe.web.access import field_list, read_json, require_writer
from volfefe.web.encode import JSON
from volfefe.web.errors import RequestTooLarge, error_body
from volfefe.web.state import AppState, app_state

MAX_PAGE = 200
IDS = """
SELECT c.id, s.name AS source, c.external_id FROM contents c JOIN sources s ON s.id = c.source_id
WHERE (s.name, c.external_id) IN (SELECT * FROM unnest(%(sources)s::text[], %(ids)s::text[]))
"""


async def ingest(request: Request) -> Response:
    """Store posts (`{"posts": [...]}` or one post object) and queue their classification."""
    state = app_state(request)
    settings = state.settings
    require_writer(request, settings.api_token)
    body = await read_json(request, settings.api_max_body)
    if isinstance(body, dict) and "posts" not in body:
        body = {"posts": [body]}
    records = field_list(body, "posts", settings.api_max_items)
    for index, record in enumerate(records):
        text = record.get("text") if isinstance(record, dict) else None
        if isinstance(text, str) and len(text) > settings.api_max_text_chars:
            raise RequestTooLarge(
                f"posts[{index}].text has {len(text)} characters; the limit is "
                f"{settings.api_max_text_chars}"
            )
    report = await run_in_threadpool(_ingest, state, records)
    return JSON(report)


def _ingest(state: AppState, records: list[Any]) -> dict[str, Any]:
    queued: dict[int, int] = {}

    def enqueue_jobs(cur: Any, ids: list[int]) -> None:
        # A post skipped by enqueue already has a job (the auto-enqueue trigger queues it in
        # this same transaction): that job is the one that will classify it.
        report = enqueue(cur.connection, ids)
        queued.update(report.queued)
        queued.update(report.active)

    with state.db.connection() as conn:
        report = import_records(conn, enumerate(records), on_inserted=enqueue_jobs)
        rejected = {index for index, _ in report.rejected}
        keys = [
            (str(r["source"]).strip(), str(r["external_id"]).strip())
            for i, r in enumerate(records)
            if i not in rejected
        ]
        found = conn.execute(
            IDS, {"sources": [k[0] for k in keys], "ids": [k[1] for k in keys]}
        ).fetchall()
    ids = {(row["source"], row["external_id"]): row["id"] for row in found}
    posts = []
    for index, record in enumerate(records):
        if index in rejected:
            continue
        content_id = ids.get((str(record["source"]).strip(), str(record["external_id"]).strip()))
        posts.append({"index": index, "id": content_id, "job_id": queued.get(content_id or 0)})
    return {
        "inserted": report.inserted,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "queued": len(queued),
        "posts": posts,
        "rejected": [
            {"index": index, "error": error_body(error)} for index, error in report.errors
        ],
    }


def read_filter(request: Request) -> PostFilter:
    """The filters of a posts page from its query string."""
    query = request.query_params
    return PostFilter(
        sentiment=params.choice(query, "sentiment", SENTIMENTS),
        min_confidence=params.number(query, "min_confidence", low=0.0, high=1.0),
        since=params.timestamp(query, "since"),
        until=params.timestamp(query, "until"),
        search=params.text(query, "q"),
        quarantined=params.flag(query, "quarantined"),
        before=params.integer(query, "cursor", low=1),
        limit=params.integer(query, "limit", low=1, high=MAX_PAGE) or 50,
    )


def posts_page(request: Request) -> Response:
    """`GET /api/v1/posts`: newest first; `next_cursor` fetches the next page."""
    state = app_state(request)
    where = read_filter(request)
    with state.db.connection() as conn:
        rows, cursor = list_posts(conn, where)
    return JSON({"posts": [post_json(row) for row in rows], "next_cursor": cursor})


def post_detail(request: Request) -> Response:
    """`GET /api/v1/posts/{id}`: the post, its classification, its jobs and their attempts."""
    state = app_state(request)
    content_id = params.row_id(request, ContentNotFound)
    with state.db.connection() as conn:
        row = get_post(conn, content_id)
    post = post_json(row)
    post["jobs"] = row["jobs"]
    post["attempts"] = [
        {**a, "error": f"{a['error_type']}: {a['message']}" if a["error_type"] else None}
        for a in row["attempts"]
    ]
    return JSON(post)


def post_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored post as the API shows it (classification and quarantine nested, or null)."""
    meta = row.get("meta") or {}
    classification = None
    if row.get("sentiment") is not None:
        classification = {
            "sentiment": row["sentiment"],
            "confidence": row["confidence"],
            "probabilities": meta.get("raw_scores", {}),
            "model_version": row["model_version"],
            "truncated": bool(meta.get("truncated", False)),
            "tokens": meta.get("tokens"),
            "classified_at": row["classified_at"],
        }
    quarantine = None
    if row.get("quarantined_at") is not None:
        quarantine = {"at": row["quarantined_at"], "reason": row["quarantine_reason"]}
    return {
        "id": row["id"],
        "source": row["source"],
        "external_id": row["external_id"],
        "author": row["author"],
        "text": row["text"],
        "url": row["url"],
        "published_at": row["published_at"],
        "inserted_at": row["inserted_at"],
        "classification": classification,
        "quarantine": quarantine,
    }
