"""The pool's request queue: dynamic batching by budget and max wait, retries first."""

from __future__ import annotations

import asyncio

from volfefe.supervisor.batching import Request, RequestQueue, estimate_tokens, split_texts
from volfefe.supervisor.trial import Stage


async def test_waiting_jobs_are_gathered_into_one_batch() -> None:
    queue = RequestQueue(token_budget=10_000, max_texts=64, max_wait=0.0)
    requests = [Request([f"text {i}"]) for i in range(5)]
    for request in requests:
        queue.put(request)
    assert await queue.take() == requests


async def test_batches_respect_the_text_cap_and_the_token_budget() -> None:
    queue = RequestQueue(token_budget=500, max_texts=3, max_wait=0.0)
    small = [Request(["a b c"]) for _ in range(4)]
    long = Request(["x" * 4000])  # estimated at the 512-token maximum
    for request in [*small, long]:
        queue.put(request)
    assert await queue.take() == small[:3]  # text cap
    assert await queue.take() == [small[3]]  # the long one would pass the budget
    assert await queue.take() == [long]  # a request larger than the budget still goes, alone


async def test_waiting_requests_share_a_call_within_the_sum_of_their_tokens() -> None:
    # The child sorts a call by length and cuts it into passes, so unlike lengths cost about
    # their sum: everything waiting that fits goes now rather than waiting for another call.
    queue = RequestQueue(token_budget=100, max_texts=64, max_wait=0.0)
    short = Request(["s1", "s2"], costs=[10, 10])
    longer = Request(["l1"], costs=[40])
    last = Request(["l2"], costs=[41])  # 101 with the others
    for request in (short, longer, last):
        queue.put(request)
    assert await queue.take() == [short, longer]
    assert await queue.take() == [last]


async def test_a_batch_takes_the_oldest_then_texts_of_like_length() -> None:
    queue = RequestQueue(token_budget=10_000, max_texts=2, max_wait=0.0)
    texts = ["up", "x" * 2000, "down", "y" * 1900]
    short_a, long_a, short_b, long_b = (Request([t]) for t in texts)
    for request in [short_a, long_a, short_b, long_b]:
        queue.put(request)
    # FIFO would pair short_a with long_a, and the child would pad "up" to 502 tokens.
    assert await queue.take() == [short_a, short_b]
    assert await queue.take() == [long_a, long_b]


async def test_the_oldest_request_goes_first_whatever_its_length() -> None:
    queue = RequestQueue(token_budget=10_000, max_texts=2, max_wait=0.0)
    long, shorts = Request(["x" * 2000]), [Request([t]) for t in ["a", "b", "c"]]
    for request in [long, *shorts]:
        queue.put(request)
    assert await queue.take() == [long, shorts[0]]
    assert await queue.take() == shorts[1:]


async def test_a_batch_with_a_request_left_out_for_room_goes_without_waiting() -> None:
    queue = RequestQueue(token_budget=100, max_texts=64, max_wait=30.0)
    short, long = Request(["stocks rally"]), Request(["x" * 2000])
    queue.put(short)
    queue.put(long)
    assert await asyncio.wait_for(queue.take(), 5) == [short]  # not 30 s of waiting for more
    assert await asyncio.wait_for(queue.take(), 5) == [long]


async def test_a_short_batch_waits_for_more_until_it_is_full() -> None:
    queue = RequestQueue(token_budget=10_000, max_texts=2, max_wait=30.0)
    first, second = Request(["first"]), Request(["second"])
    queue.put(first)
    taking = asyncio.create_task(queue.take())
    await asyncio.sleep(0)  # take() has the first request and waits (up to 30 s) for more
    assert not taking.done()
    queue.put(second)  # the batch is now full: no more waiting
    assert await asyncio.wait_for(taking, 5) == [first, second]


async def test_after_a_lone_request_waited_in_vain_the_next_lone_one_goes_at_once() -> None:
    queue = RequestQueue(token_budget=10_000, max_texts=64, max_wait=0.05)
    first = Request(["first"])
    queue.put(first)
    assert await queue.take() == [first]  # waited 50 ms for company, in vain
    second = Request(["second"])
    queue.put(second)
    taking = asyncio.create_task(queue.take())
    await asyncio.sleep(0)  # no wait this time: the lone request is taken at once
    assert taking.done() and taking.result() == [second]
    # Company comes back (two requests waiting at once): waiting for more is on again.
    both = [Request(["third"]), Request(["fourth"])]
    for request in both:
        queue.put(request)
    assert await queue.take() == both
    fifth = Request(["fifth"])
    queue.put(fifth)
    taking = asyncio.create_task(queue.take())
    await asyncio.sleep(0)
    assert not taking.done()  # waits up to max_wait for company again
    sixth = Request(["sixth"])
    queue.put(sixth)
    assert await asyncio.wait_for(taking, 5) == [fifth, sixth]


async def test_max_wait_zero_sends_a_lone_job_at_once() -> None:
    queue = RequestQueue(token_budget=10_000, max_texts=64, max_wait=0.0)
    request = Request(["alone"])
    queue.put(request)
    assert await asyncio.wait_for(queue.take(), 5) == [request]


async def test_a_trials_requests_go_first_and_alone() -> None:
    queue = RequestQueue(token_budget=10_000, max_texts=64, max_wait=0.0)
    normal = [Request(["n1"]), Request(["n2"])]
    alone, control = Request(["r"], stage=Stage.ALONE), Request(["c"], stage=Stage.CONTROL)
    for request in normal:
        queue.put(request)
    queue.put(alone)
    queue.put(control)
    assert await queue.take() == [alone]
    assert await queue.take() == [control]
    assert await queue.take() == normal


async def test_stop_ends_takers_once_the_queue_is_empty() -> None:
    queue = RequestQueue(token_budget=10_000, max_texts=64, max_wait=0.0)
    waiting = asyncio.create_task(queue.take())
    await asyncio.sleep(0)
    queue.stop()
    assert await asyncio.wait_for(waiting, 5) is None


def test_token_estimate_is_capped() -> None:
    assert estimate_tokens("") == 2
    assert estimate_tokens("x" * 1_000_000) == 512


def test_a_callers_texts_are_split_by_the_text_cap_and_the_token_budget() -> None:
    long, short = "x" * 4000, "a b c"  # 512 and 3 estimated tokens
    assert split_texts([short] * 5, 2, 10_000) == [[short] * 2, [short] * 2, [short]]
    assert split_texts([short, long, long, short], 64, 1100) == [[short, long], [long, short]]
    # The budget is of padded tokens: 3 short texts and a long one are 521 tokens, but a pass
    # of 4 texts padded to the long one's 512 costs 2,048.
    assert split_texts([short] * 3 + [long], 64, 600) == [[short] * 3, [long]]
    assert split_texts(["a", "b", "c"], 64, 10, costs=[1, 5, 5]) == [["a", "b"], ["c"]]
    assert split_texts([long, long], 64, 1024) == [[long, long]]  # an exact fit
    assert split_texts([long], 64, 100) == [[long]]  # over the budget alone: still sent
    assert split_texts([], 64, 100) == []


async def test_take_short_gives_the_short_requests_waiting_now_oldest_first() -> None:
    # An express call (VOLFEFE_PREEMPT=layers): short requests only, within a budget, no wait.
    queue = RequestQueue(token_budget=10_000, max_texts=3, max_wait=0.0)
    old_short = Request(["a", "b"], costs=[5, 8])
    mixed = Request(["c", "d"], costs=[5, 90])  # one long text: not short
    new_short = Request(["e"], costs=[9])
    last = Request(["f"], costs=[3])  # over the text cap with the others
    trial = Request(["g"], costs=[2], stage=Stage.ALONE)  # a trial's request runs alone
    for request in (old_short, mixed, new_short, last, trial):
        queue.put(request)
    assert queue.take_short(max_tokens=10, budget=100) == [old_short, new_short]
    assert queue.take_short(max_tokens=10, budget=2) == []  # "f" costs 3
    assert queue.texts == 4
    assert await queue.take() == [trial]
    assert await queue.take() == [mixed, last]


async def test_arrival_wakes_on_a_put_and_says_when_the_queue_stopped() -> None:
    queue = RequestQueue(token_budget=10_000, max_texts=64, max_wait=0.0)
    waiter = asyncio.create_task(queue.arrival())
    await asyncio.sleep(0)
    assert not waiter.done()
    queue.put(Request(["up"]))
    assert await waiter is True
    queue.stop()
    assert await queue.arrival() is False
