"""The queue's order under the scheduling rules: shortest first with an aging bound, and idle
children kept for short posts (supervisor/scheduling.py). The clock is the test's: orders
are asserted, never times."""

from __future__ import annotations

import asyncio

from volfefe.config import Settings
from volfefe.supervisor.batching import Request, RequestQueue
from volfefe.supervisor.scheduling import Schedule
from volfefe.supervisor.trial import Stage

AGING = 0.0625  # exact in binary: the clock lands on the bound itself


class Clock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def queue(
    clock: Clock, *, budget: int = 10_000, shortest: bool = False, reserve: int = 0
) -> RequestQueue:
    schedule = Schedule(shortest=shortest, aging=AGING, reserve=reserve)
    return RequestQueue(budget, max_texts=64, max_wait=0.0, schedule=schedule, clock=clock)


def long(tokens: int = 300) -> Request:
    return Request([f"long {tokens}"], costs=[tokens])


def short(tokens: int = 10) -> Request:
    return Request([f"short {tokens}"], costs=[tokens])


async def pending(task: asyncio.Task[list[Request] | None]) -> bool:
    """True when `task` is still waiting once everything ready to run has run."""
    for _ in range(5):
        await asyncio.sleep(0)
    return not task.done()


async def test_shortest_first_takes_a_short_post_before_the_long_one_queued_earlier() -> None:
    clock = Clock()
    q = queue(clock, shortest=True)
    first, second = long(), short()
    q.put(first)
    q.put(second)
    assert await q.take() == [second]
    assert await q.take() == [first]


async def test_shortest_first_orders_by_tokens_per_text_then_by_arrival() -> None:
    clock = Clock()
    q = queue(clock, budget=1, shortest=True)  # a budget of 1: one request a batch
    medium = Request(["m"], costs=[100])
    bulk = Request([f"b{i}" for i in range(20)], costs=[12] * 20)  # 240 tokens, 12 a text
    tweet_a, tweet_b = short(20), short(20)
    for request in (medium, tweet_a, bulk, tweet_b):
        q.put(request)
    taken = [await q.take() for _ in range(4)]
    assert taken == [[bulk], [tweet_a], [tweet_b], [medium]]


async def test_a_request_that_waited_the_aging_bound_goes_before_shorter_ones() -> None:
    clock = Clock()
    q = queue(clock, shortest=True)
    old = long()
    q.put(old)
    clock.now += AGING
    newer = short()
    q.put(newer)
    assert await q.take() == [old]  # aged: no longer overtaken
    assert await q.take() == [newer]


async def test_a_request_put_back_keeps_its_age() -> None:
    clock = Clock()
    q = queue(clock, shortest=True)
    old = long()
    q.put(old)
    batch = await q.take()
    assert batch == [old]
    clock.now += AGING
    q.put(newer := short())
    q.put_back(batch)  # its child died before the call: it has waited since its put
    assert await q.take() == [old]
    assert await q.take() == [newer]


async def test_under_a_rule_a_call_holds_short_posts_or_long_ones_never_both() -> None:
    clock = Clock()
    q = queue(clock, shortest=True)
    requests = [long(300), short(10), long(280), short(12)]
    for request in requests:
        q.put(request)
    # All four fit the budget; by default they would share one call.
    assert await q.take() == [requests[1], requests[3]]
    assert await q.take() == [requests[2], requests[0]]  # closest to the first one's length


async def test_a_short_batch_waits_for_short_company_only() -> None:
    schedule = Schedule(shortest=True, aging=60.0)
    q = RequestQueue(10_000, max_texts=2, max_wait=30.0, schedule=schedule, clock=Clock())
    q.put(held := long())
    q.put(first := short())
    taker = asyncio.create_task(q.take())
    assert await pending(taker)  # the long one cannot join: it waits (without spinning)
    q.put(second := short())
    assert await asyncio.wait_for(taker, 5) == [first, second]
    assert q.drain() == [held]


async def test_a_trials_requests_still_go_first() -> None:
    clock = Clock()
    q = queue(clock, shortest=True, reserve=1)
    q.put(tweet := short())
    q.put(trial := Request(["suspect " * 200], stage=Stage.ALONE))
    assert await q.take() == [trial]
    assert await q.take() == [tweet]


async def test_the_last_idle_child_waits_for_short_posts_rather_than_take_a_long_one() -> None:
    clock = Clock()
    q = queue(clock, reserve=1)
    q.put(held := long())
    taker = asyncio.create_task(q.take())
    assert await pending(taker)  # one child free: it is kept for short posts
    q.put(tweet := short())
    assert await asyncio.wait_for(taker, 5) == [tweet]
    # A second free child: two are idle, so one of them takes the long post.
    takers = [asyncio.create_task(q.take()) for _ in range(2)]
    done, waiting = await asyncio.wait(takers, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    assert [task.result() for task in done] == [[held]]
    left = waiting.pop()
    assert await pending(left)
    left.cancel()


async def test_a_long_post_held_back_takes_the_last_child_once_it_has_aged() -> None:
    clock = Clock()
    q = queue(clock, reserve=1)
    q.put(held := long())
    taker = asyncio.create_task(q.take())
    assert await pending(taker)
    clock.now += AGING  # the taker wakes up when the aging bound is due, and re-checks
    assert await asyncio.wait_for(taker, 5) == [held]


async def test_the_last_idle_child_takes_the_shortest_while_a_long_post_waits() -> None:
    clock = Clock()
    q = queue(clock, budget=1, shortest=True, reserve=1)
    for request in (held := long(), medium := short(60), tweet := short(8)):
        q.put(request)
    assert await q.take() == [tweet]
    assert await q.take() == [medium]
    taker = asyncio.create_task(q.take())
    assert await pending(taker)
    q.put(another := short())
    assert await asyncio.wait_for(taker, 5) == [another]
    assert held in q.drain()


async def test_a_stopping_queue_keeps_no_child_for_short_posts() -> None:
    clock = Clock()
    q = queue(clock, reserve=1)
    q.put(held := long())
    taker = asyncio.create_task(q.take())
    assert await pending(taker)
    q.stop()
    assert await asyncio.wait_for(taker, 5) == [held]
    assert await q.take() is None


async def test_the_default_schedule_is_first_come_first_served() -> None:
    clock = Clock()
    q = RequestQueue(10_000, max_texts=64, max_wait=0.0, clock=clock)
    requests = [long(), short()]
    for request in requests:
        q.put(request)
    assert await q.take() == requests  # the oldest, then whatever fits, of any length


def test_a_pool_of_one_child_keeps_none_for_short_posts() -> None:
    one = Schedule.from_settings(Settings(workers=1, short_reserve=2))
    three = Schedule.from_settings(Settings(workers=3, short_reserve=5, schedule="shortest"))
    assert (one.reserve, one.by_length) == (0, False)
    assert (three.reserve, three.shortest) == (2, True)
