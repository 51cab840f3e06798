"""One request line in, one reply out: what every serve loop of the child does per line.

A line that is not a request gets a `BadRequest` reply (with its id when one can be read);
a request is classified, after the test-only fault switch has had its say.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import IO

import orjson

from volfefe.child.engine import Engine
from volfefe.child.faults import Fault
from volfefe.protocol import (
    DecodeError,
    ItemError,
    ItemResult,
    Reply,
    Request,
    clean_text,
    decode_request,
)


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
    [(_, reply)] = itertools.chain.from_iterable(
        answer_as_done(engine, [request], proto_out, fault)
    )
    return reply


def answer_as_done(
    engine: Engine, requests: list[Request], proto_out: IO[bytes], fault: Fault | None
) -> Iterator[list[tuple[int, Reply]]]:
    """The replies to `requests` as they become whole, the texts of all classified in one
    engine call: one list per step, (index in `requests`, reply) in the requests' order. The
    first step holds the pings (no pass needed); then each forward pass (shortest texts
    first) gives the requests whose last text it classified, so a request of short texts is
    answered after the pass that took them, not after the whole call."""
    for request in requests:
        if fault is not None and request.texts:
            fault.on_request(request.texts, proto_out)
        elif fault is not None:  # a ping: not a counted request, but a garbled child shows
            fault.on_ping(proto_out)
    yield [(n, Reply(request.id, [])) for n, request in enumerate(requests) if not request.texts]
    owner = [n for n, request in enumerate(requests) for _ in request.texts]
    starts = list(itertools.accumulate((len(r.texts) for r in requests), initial=0))
    left = [len(request.texts) for request in requests]
    results: list[ItemResult | ItemError | None] = [None] * len(owner)
    texts = [clean_text(t) for request in requests for t in request.texts]
    for done in engine.classify_passes(texts):
        whole = []
        for index, result in done:
            results[index] = result
            left[owner[index]] -= 1
            if not left[owner[index]]:
                whole.append(owner[index])
        yield [
            (
                n,
                Reply(
                    requests[n].id, [r for r in results[starts[n] : starts[n + 1]] if r is not None]
                ),
            )
            for n in sorted(whole)
        ]


def _guess_id(line: bytes) -> int | None:
    try:
        value = orjson.loads(line).get("id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, int) else None
