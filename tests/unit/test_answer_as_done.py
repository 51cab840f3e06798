"""A child answering requests together (a pause of the preempting child) sends each reply
as soon as the pass that finished it is over: the short request that came after a long one
is answered first, with the same results as alone."""

from __future__ import annotations

import io

from tests.unit.test_engine_shapes import engine
from volfefe.child.answer import answer, answer_as_done
from volfefe.protocol import Request


def test_each_request_is_answered_after_the_pass_that_finished_it() -> None:
    shapes: list[tuple[int, ...]] = []
    long = Request(1, ["tariffs " * 58, "oil flat today"])  # 60 and 5 tokens
    short = Request(2, ["stocks rally", "bonds up"])  # 4 tokens each
    ping = Request(3, [])
    out = io.BytesIO()
    steps = answer_as_done(engine(1, shapes), [long, short, ping], out, None)
    order = [([n for n, _ in step], shapes.copy()) for step in steps]
    # the ping at once, the short request after the first pass, the long one after the last
    assert order == [([2], []), ([1], [(3, 5)]), ([0], [(3, 5), (1, 60)])]
    alone = [answer(engine(1, []), r, out, None) for r in (long, short, ping)]
    together = answer_as_done(engine(1, []), [long, short, ping], out, None)
    replies = dict(pair for step in together for pair in step)
    assert [replies[n] for n in range(3)] == alone
