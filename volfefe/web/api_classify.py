"""`POST /api/v1/classify`: the model-server route (TEI calls it /predict).

`{"texts": [...]}` -> `{"results": [...]}`, one per text in order: a classification, or
`{"error": {"type", "message"}}` for that text alone. The whole call fails with 503 and
`Retry-After` when the pool is overloaded, broken or closing.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from volfefe.errors import ClassifierError
from volfefe.result import Classification
from volfefe.web.access import field_list, read_json, require_writer
from volfefe.web.encode import JSON
from volfefe.web.errors import UNAVAILABLE, InvalidRequest, RequestTooLarge, error_body
from volfefe.web.state import app_state


async def classify(request: Request) -> Response:
    """Classify up to `api_max_items` texts in one call to the shared Classifier."""
    state = app_state(request)
    settings = state.settings
    require_writer(request, settings.api_token)
    body = await read_json(request, settings.api_max_body)
    texts = field_list(body, "texts", settings.api_max_items)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidRequest(f"texts[{index}] must be a string, got {type(text).__name__}")
        if len(text) > settings.api_max_text_chars:
            raise RequestTooLarge(
                f"texts[{index}] has {len(text)} characters; the limit is "
                f"{settings.api_max_text_chars}"
            )
    started = time.monotonic()
    results = await state.classifier.aclassify_many(texts, return_exceptions=True)
    state.metrics.classify.observe(time.monotonic() - started)
    state.metrics.batch.observe(len(texts))
    for result in results:
        if isinstance(result, UNAVAILABLE):
            raise result  # the pool's state, not this text's: the whole call is a 503
    return JSON({"results": [_one(result) for result in results]})


def _one(result: Classification | ClassifierError) -> dict[str, Any]:
    if isinstance(result, ClassifierError):
        return {"error": error_body(result)}
    return result.to_dict()
