"""One request line in, one reply out: what every serve loop of the child does per line.

A line that is not a request gets a `BadRequest` reply (with its id when one can be read);
a request is classified, after the test-only fault switch has had its say.
"""

from __future__ import annotations

from typing import IO

import orjson

from volfefe.child.engine import Engine
from volfefe.child.faults import Fault
from volfefe.protocol import DecodeError, ItemError, Reply, Request, clean_text, decode_request


def read_line(line: bytes) -> Request | Reply:
    """The request on `line`, or the reply that says why it is not one.

    >>> read_line(b'{"id": 4, "texts": ["up"]}')
    Request(id=4, texts=['up'])
    >>> read_line(b'{"id": 5}').error.type
    'BadRequest'
    """
    try:
        return decode_request(line)
    except DecodeError as exc:
        return Reply(_guess_id(line), error=ItemError("BadRequest", str(exc)))


def answer(engine: Engine, request: Request, proto_out: IO[bytes], fault: Fault | None) -> Reply:
    """Classify the request's texts (a ping, with none, gets an empty reply)."""
    return answer_together(engine, [request], proto_out, fault)[0]


def answer_together(
    engine: Engine, requests: list[Request], proto_out: IO[bytes], fault: Fault | None
) -> list[Reply]:
    """Each request's reply, as `answer` gives it, with the texts of all classified in one
    engine call (so short requests waiting together share forward passes)."""
    for request in requests:
        if fault is not None and request.texts:
            fault.on_request(request.texts, proto_out)
        elif fault is not None:  # a ping: not a counted request, but a garbled child shows
            fault.on_ping(proto_out)
    results = engine.classify([clean_text(t) for r in requests for t in r.texts])
    replies, start = [], 0
    for request in requests:
        replies.append(Reply(request.id, results[start : start + len(request.texts)]))
        start += len(request.texts)
    return replies


def _guess_id(line: bytes) -> int | None:
    try:
        value = orjson.loads(line).get("id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, int) else None
