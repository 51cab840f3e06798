"""What the range picker (`templates/range_picker.html`) shows: a link per preset and a
since/until form, both plain HTML so the choice works without JavaScript and stays in the URL.

>>> from datetime import UTC, datetime, timedelta
>>> span = TimeRange(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC),
...                  timedelta(minutes=15), preset="24h")
>>> p = picker(span, "/", {"source": "x"})
>>> [(x["label"], x["href"], x["current"]) for x in p["presets"]][1:3]
[('1 h', '/?range=1h&source=x', False), ('24 h', '/?range=24h&source=x', True)]
>>> p["since"], p["until"], p["keep"]
('2026-01-01T00:00', '2026-01-02T00:00', {'source': 'x'})
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime
from typing import Any

from volfefe.web.timerange import PRESETS, TimeRange

LABELS = {"15m": "15 min", "1h": "1 h", "24h": "24 h", "7d": "7 d"}


def picker(span: TimeRange, path: str, keep: dict[str, str]) -> dict[str, Any]:
    """Links to each preset and the form's values for `span` on the page at `path`;
    `keep` holds the page's other parameters (a source, say), carried along by both."""
    presets = [
        {
            "label": LABELS[name],
            "href": path + "?" + urllib.parse.urlencode({"range": name, **keep}),
            "current": span.preset == name,
        }
        for name in PRESETS
    ]
    return {
        "presets": presets,
        "since": local(span.since),
        "until": local(span.until),
        "custom": span.preset is None,
        "keep": keep,
        "path": path,
        "bucket": span.bucket_text,
    }


def local(moment: datetime) -> str:
    """A `datetime-local` input's value, in UTC to the minute (as the form says)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
