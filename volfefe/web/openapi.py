"""`GET /api/v1/openapi.json`: the OpenAPI 3.1 description of the JSON API, written by hand
next to the routes it describes (a test checks that every API route is in it)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from volfefe.jobs.listing import STATES
from volfefe.result import SENTIMENTS
from volfefe.sinks.definition import (
    NAME_PATTERN,
    NATS_URL_PATTERN,
    SECRET_PATTERN,
    SUBJECT_PATTERN,
    WEBHOOK_PATTERN,
)
from volfefe.store.importer import MAX_KEY_BYTES
from volfefe.store.posts import BIGINT_MAX
from volfefe.web.encode import JSON
from volfefe.web.timerange import BUCKET_PATTERN, PRESETS

ERROR = {"$ref": "#/components/schemas/Error"}
KEY_LIMIT = f"at most {MAX_KEY_BYTES:,} bytes of UTF-8; a longer one rejects its row (FieldTooLong)"
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        401: "missing or wrong Bearer token",
        404: "no such post, job or sink",
        409: "the job is not in a state that allows this",
        413: "body, item count or a text over the limits",
        422: "the body or a parameter is invalid",
        502: "the sink's receiver did not take the message (DeliveryFailed)",
        503: "overloaded, pool broken or database unavailable (see Retry-After)",
    }
    return {
        str(c): {"description": text[c], "content": {"application/json": {"schema": ERROR}}}
        for c in codes
    }


def _query(name: str, schema: dict[str, Any], text: str) -> dict[str, Any]:
    # An empty value counts as absent (the dashboard's forms send their empty fields).
    return {
        "name": name,
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "schema": schema,
        "description": text,
    }


def _ok(text: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"application/json": {"schema": schema or {"type": "object"}}}
    return {"200": {"description": text, "content": body}}


# ISO 8601, a date or a time (no zone = UTC)
TIME = {"type": "string", "anyOf": [{"format": "date-time"}, {"format": "date"}]}
# volfefe.web.timerange: a preset or since/until (since before until, at most
# timerange.MAX_BUCKETS buckets: rules a description cannot state, so 422 in either mode)
RANGE = [
    _query("range", {"enum": list(PRESETS)}, "a preset ending now; default 24h"),
    _query("since", TIME, "published_at >= (instead of range)"),
    _query("until", TIME, "published_at < (default now)"),
    _query("bucket", {"type": "string", "pattern": BUCKET_PATTERN}, "30s, 15m, 1h, 1d..."),
]
COUNT = {"type": "integer", "minimum": 0}
INDEX = {
    "type": "object",
    "required": ["since", "until", "bucket", "bucket_seconds", "source", "buckets"],
    "properties": {
        "since": {"type": "string", "format": "date-time"},
        "until": {"type": "string", "format": "date-time"},
        "bucket": {"type": "string", "pattern": BUCKET_PATTERN},
        "bucket_seconds": {"type": "integer", "minimum": 1},
        "source": {"type": ["string", "null"]},
        "buckets": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["start", "posts", "index", "positive", "negative", "neutral"],
                "properties": {
                    "start": {"type": "string", "format": "date-time"},
                    "posts": COUNT,
                    "index": {"type": ["number", "null"], "minimum": -1, "maximum": 1},
                    "positive": COUNT,
                    "negative": COUNT,
                    "neutral": COUNT,
                },
            },
        },
    },
}
JOB_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
SINK_ID = JOB_ID
SINK_BODY: dict[str, Any] = {
    "type": "object",
    "description": "a webhook ({webhook, secret?}) or a NATS JetStream subject ({nats, url?}), "
    "with optional filters",
    "additionalProperties": False,
    "properties": {
        "webhook": {"type": "string", "pattern": WEBHOOK_PATTERN},
        "secret": {"type": "string", "pattern": SECRET_PATTERN, "description": "default: new"},
        "nats": {"type": "string", "pattern": SUBJECT_PATTERN},
        "url": {"type": "string", "pattern": NATS_URL_PATTERN, "description": "NATS server"},
        "sentiments": {"type": "array", "minItems": 1, "items": {"enum": list(SENTIMENTS)}},
        "min_confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "sources": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "pattern": NAME_PATTERN},
        },
        "from_start": {"type": "boolean", "description": "also every result stored so far"},
    },
    "oneOf": [
        {
            "required": ["webhook"],
            "not": {"anyOf": [{"required": ["nats"]}, {"required": ["url"]}]},
        },
        {
            "required": ["nats"],
            "not": {"anyOf": [{"required": ["webhook"]}, {"required": ["secret"]}]},
        },
    ],
}


def _sink_action(summary: str, codes: tuple[int, ...] = (401, 404)) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": BEARER,
            "parameters": [SINK_ID],
            "responses": {**_ok("the sink"), **_errors(*codes)},
        }
    }


PAGE = [
    _query(
        "cursor",
        {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX},
        "next_cursor of the previous page",
    ),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (50)"),
]
SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "volfefe", "version": "1", "description": "Financial sentiment of posts."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
                        "required": ["type", "message"],
                    }
                },
            },
            "Classification": {
                "type": "object",
                "properties": {
                    "sentiment": {"enum": ["positive", "negative", "neutral"]},
                    "confidence": {"type": "number"},
                    "model_version": {"type": "string"},
                    "meta": {"type": "object"},
                },
            },
            "Post": {
                "type": "object",
                "required": ["source", "external_id"],
                "properties": {
                    "source": {"type": "string", "description": KEY_LIMIT},
                    "external_id": {"type": ["string", "integer"], "description": KEY_LIMIT},
                    "author": {"type": "string"},
                    "text": {"type": "string"},
                    "published_at": {"type": ["string", "number"]},
                    "url": {"type": "string"},
                },
            },
        },
    },
    "paths": {
        "/api/v1/classify": {
            "post": {
                "summary": "Classify texts; one result or error per text, in order",
                "security": BEARER,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "texts": {
                                        "type": "array",
                                        "minItems": 1,
                                        "items": {"type": "string"},
                                    }
                                },
                                "required": ["texts"],
                            }
                        }
                    },
                },
                "responses": {
                    **_ok("results in order: a Classification or {error}"),
                    **_errors(401, 413, 422, 503),
                },
            }
        },
        "/api/v1/posts": {
            "get": {
                "summary": "Posts, newest first, with filters and a cursor",
                "parameters": [
                    _query("sentiment", {"enum": ["positive", "negative", "neutral"]}, ""),
                    _query("min_confidence", {"type": "number", "minimum": 0, "maximum": 1}, ""),
                    _query("since", TIME, "published_at >="),
                    _query("until", TIME, "published_at <"),
                    _query("q", {"type": "string"}, "text contains (case-insensitive)"),
                    _query("quarantined", {"type": "boolean"}, ""),
                    *PAGE,
                ],
                "responses": {**_ok("{posts, next_cursor}"), **_errors(422)},
            },
            "post": {
                "summary": "Ingest posts (idempotent on source + external_id) and queue jobs",
                "security": BEARER,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "description": "{posts: [...]}, or one post object alone",
                                "properties": {
                                    "posts": {
                                        "type": "array",
                                        "minItems": 1,
                                        # Any value is taken: a row that is not a valid Post
                                        # is rejected in the 200 body, the others are stored.
                                        "items": {
                                            "anyOf": [{"$ref": "#/components/schemas/Post"}, {}]
                                        },
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    **_ok("{inserted, updated, unchanged, queued, posts, rejected}"),
                    **_errors(401, 413, 422, 503),
                },
            },
        },
        "/api/v1/posts/{id}": {
            "get": {
                "summary": "One post, its classification with probabilities, jobs and attempts",
                "parameters": [JOB_ID],
                "responses": {**_ok("the post"), **_errors(404)},
            }
        },
        "/api/v1/stats": {"get": {"summary": "Totals", "responses": _ok("the overview")}},
        "/api/v1/timeline": {
            "get": {
                "summary": "Posts per sentiment and mean confidence per bucket of published_at",
                "parameters": [
                    _query("bucket", {"enum": ["hour", "day"]}, "default day"),
                    _query("since", TIME, ""),
                    _query("until", TIME, ""),
                ],
                "responses": {**_ok("{bucket, buckets}"), **_errors(422)},
            }
        },
        "/api/v1/index": {
            "get": {
                "summary": "The sentiment index (confidence-weighted net sentiment) per bucket",
                "parameters": [
                    *RANGE,
                    _query("source", {"type": "string"}, "only this source's posts"),
                    _query("format", {"enum": ["json", "csv"]}, "default json"),
                ],
                "responses": {
                    "200": {
                        "description": "{since, until, bucket, bucket_seconds, source, buckets}",
                        "content": {
                            "application/json": {"schema": INDEX},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(422),
                },
            }
        },
        "/api/v1/jobs": {
            "get": {
                "summary": "Classification jobs with their last error, newest first",
                "parameters": [
                    _query("state", {"enum": list(STATES)}, ""),
                    *PAGE,
                ],
                "responses": {
                    **_ok("{counts, oldest_waiting_s, jobs, next_cursor}"),
                    **_errors(422),
                },
            }
        },
        "/api/v1/jobs/{id}/retry": {
            "post": {
                "summary": "Queue a failed job again",
                "security": BEARER,
                "parameters": [JOB_ID],
                "responses": {**_ok("{id, status}"), **_errors(401, 404, 409)},
            }
        },
        "/api/v1/jobs/{id}/cancel": {
            "post": {
                "summary": "Cancel a waiting job",
                "security": BEARER,
                "parameters": [JOB_ID],
                "responses": {**_ok("{id, status}"), **_errors(401, 404, 409)},
            }
        },
        "/api/v1/sinks": {
            "get": {
                "summary": "Sinks with their health (state, pending, lag, last delivery)",
                "security": BEARER,
                "responses": {**_ok("{sinks}"), **_errors(401)},
            },
            "post": {
                "summary": "Add a sink; the answer holds its id and a webhook's secret",
                "security": BEARER,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": SINK_BODY}},
                },
                "responses": {**_ok("the sink, with its secret"), **_errors(401, 413, 422)},
            },
        },
        "/api/v1/sinks/{id}": {
            "delete": {
                "summary": "Remove a sink",
                "security": BEARER,
                "parameters": [SINK_ID],
                "responses": {**_ok("{id, removed}"), **_errors(401, 404)},
            }
        },
        "/api/v1/sinks/{id}/pause": _sink_action("Send nothing to the sink until resumed"),
        "/api/v1/sinks/{id}/resume": _sink_action("Send again, first what the sink missed"),
        "/api/v1/sinks/{id}/test": _sink_action("Send a test message now", (401, 404, 502)),
        # the signal tape and pipeline health (web/tape.py, web/pipeline.py)
        "/api/v1/tape": {
            "get": {
                "summary": "The newest classifications with their post, newest first",
                "parameters": [
                    _query("sentiment", {"enum": ["positive", "negative", "neutral"]}, ""),
                    _query("min_confidence", {"type": "number", "minimum": 0, "maximum": 1}, ""),
                    _query("source", {"type": "string"}, "source name (exact)"),
                    _query("author", {"type": "string"}, "author contains (case-insensitive)"),
                    _query("q", {"type": "string"}, "text contains (case-insensitive)"),
                    _query(
                        "after",
                        {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX},
                        "classification id: only newer ones",
                    ),
                    _query(
                        "before",
                        {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX},
                        "next_cursor of the previous page: only older ones",
                    ),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "(50)"),
                ],
                "responses": {**_ok("{signals, next_cursor, computed_at}"), **_errors(422)},
            }
        },
        "/api/v1/pipeline": {
            "get": {
                "summary": "Pipeline health: verdict, latency, throughput, backlog, sinks",
                "parameters": [
                    _query("range", {"enum": list(PRESETS)}, "a preset ending now; default 1h"),
                    _query("since", TIME, "classified at >= (instead of range)"),
                    _query("until", TIME, "classified at < (default now)"),
                    RANGE[-1],  # bucket
                ],
                "responses": {
                    **_ok(
                        "{status, checks, latency, buckets, jobs, classifier, quarantine, "
                        "sinks, computed_at}"
                    ),
                    **_errors(422),
                },
            }
        },
        "/api/v1/stream": {
            "get": {
                "summary": "Server-sent events, one per classification; resumable",
                "parameters": [
                    {"name": "Last-Event-ID", "in": "header", "schema": {"type": "integer"}},
                    _query("after", {"type": "integer"}, "same as Last-Event-ID"),
                ],
                "responses": {"200": {"description": "text/event-stream"}},
            }
        },
    },
}


async def document(request: Request) -> Response:
    """The OpenAPI description."""
    return JSON(SPEC)
