"""JSON responses encoded with orjson (datetimes as ISO 8601, no NaN)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSON(Response):
    """A JSON response; `JSON({"a": 1}, status_code=201)`."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Encode with orjson (datetimes become ISO 8601 strings)."""
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
