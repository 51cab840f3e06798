"""The pool's job queue: dynamic batching by budget and max wait, retries first."""

from __future__ import annotations

import asyncio

from volfefe.batcher import Job, JobQueue, estimate_tokens


async def test_waiting_jobs_are_gathered_into_one_batch() -> None:
    queue = JobQueue(token_budget=10_000, max_texts=64, max_wait=0.0)
    jobs = [Job([f"text {i}"]) for i in range(5)]
    for job in jobs:
        queue.put(job)
    assert await queue.take() == jobs


async def test_batches_respect_the_text_cap_and_the_token_budget() -> None:
    queue = JobQueue(token_budget=500, max_texts=3, max_wait=0.0)
    small = [Job(["a b c"]) for _ in range(4)]
    long = Job(["x" * 4000])  # estimated at the 512-token maximum
    for job in [*small, long]:
        queue.put(job)
    assert await queue.take() == small[:3]  # text cap
    assert await queue.take() == [small[3]]  # the long one would pass the budget
    assert await queue.take() == [long]  # a job larger than the budget still goes, alone


async def test_a_short_batch_waits_for_more_until_it_is_full() -> None:
    queue = JobQueue(token_budget=10_000, max_texts=2, max_wait=30.0)
    first, second = Job(["first"]), Job(["second"])
    queue.put(first)
    taking = asyncio.create_task(queue.take())
    await asyncio.sleep(0)  # take() has the first job and waits (up to 30 s) for more
    assert not taking.done()
    queue.put(second)  # the batch is now full: no more waiting
    assert await asyncio.wait_for(taking, 5) == [first, second]


async def test_max_wait_zero_sends_a_lone_job_at_once() -> None:
    queue = JobQueue(token_budget=10_000, max_texts=64, max_wait=0.0)
    job = Job(["alone"])
    queue.put(job)
    assert await asyncio.wait_for(queue.take(), 5) == [job]


async def test_retries_go_first_and_alone() -> None:
    queue = JobQueue(token_budget=10_000, max_texts=64, max_wait=0.0)
    normal = [Job(["n1"]), Job(["n2"])]
    retry = Job(["r"], retryable=False)
    for job in normal:
        queue.put(job)
    queue.put(retry, retry=True)
    assert await queue.take() == [retry]
    assert await queue.take() == normal


async def test_stop_ends_takers_once_the_queue_is_empty() -> None:
    queue = JobQueue(token_budget=10_000, max_texts=64, max_wait=0.0)
    waiting = asyncio.create_task(queue.take())
    await asyncio.sleep(0)
    queue.stop()
    assert await asyncio.wait_for(waiting, 5) is None


def test_token_estimate_is_capped() -> None:
    assert estimate_tokens("") == 2
    assert estimate_tokens("x" * 1_000_000) == 512
