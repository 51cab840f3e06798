"""The pool's request queue, with dynamic batching.

A caller's texts, shortest first, become requests of at most `max_texts` texts and
`forward_tokens` *padded* tokens each (`split_texts`: texts x the longest one's tokens, the
cost of one forward pass), so a bulk of long posts is never one call of more than a pass
(which is to keep a call well inside the call timeout), and a bulk request is one forward
pass of the child. Tokens are counted with the model's tokenizer when the pool has it
(token_count.py), else estimated from characters (not a bound).

Callers' requests wait here. A free child takes a *batch*: the oldest waiting request (whatever
its size; or the schedule's choice, scheduling.py, when a rule is on), then the waiting
requests whose texts are closest to its length, as many as fit the queue's `token_budget`
(`batch_tokens`, smaller than a pass by default: it is the latency knob, since a post that
arrives while a call runs waits for the whole call; here the budget is the sum of the requests'
tokens: the child sorts a call by length and cuts it into passes, so a call of unlike requests
costs about their sum) and a text cap, and, when the batch is still short and nothing was left
out for want of room, whatever arrives within `max_wait` seconds. So concurrent callers (job
workers, threads, CLI batches) share forward passes, and a lone request waits at most
`max_wait`.
When the last batch was a lone request that waited for company in vain, the next lone one
goes at once (one post at a time, the real-time case, pays no wait); company in a batch
turns the wait back on.
A trial's requests (trial.py: one text of a failed call, or the control) go first, alone.
The child then sorts each batch by length and cuts it into forward passes at the least cost.
With VOLFEFE_PREEMPT=layers a slot whose child runs a long call also takes short requests
(or, behind a call of long texts, medium ones) at once (`take_short`) for an express call,
and waits for `arrival` when none waits.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from volfefe.errors import ClassifierError
from volfefe.protocol import ItemError, ItemResult
from volfefe.supervisor.scheduling import Schedule
from volfefe.supervisor.trial import PendingCharge, Stage

Item = ItemResult | ItemError | ClassifierError
MAX_TOKENS_PER_TEXT = 512


def estimate_tokens(text: str) -> int:
    """A cheap upper-ish guess of a text's BERT tokens (about 4 characters a token).

    >>> estimate_tokens("stocks rally"), estimate_tokens("x" * 100_000)
    (5, 512)
    """
    return min(MAX_TOKENS_PER_TEXT, len(text) // 4 + 2)


def fits(texts: int, tokens: int, max_texts: int, token_budget: int) -> bool:
    """Whether a call of `texts` texts costing `tokens` tokens keeps to the cap and the budget
    (the one rule of `split_texts` and the queue; the first text or request of a call always
    goes, whatever its size).

    >>> fits(64, 4096, 64, 4096), fits(65, 10, 64, 4096), fits(1, 4097, 64, 4096)
    (True, False, False)
    """
    return texts <= max_texts and tokens <= token_budget


def run_sizes(costs: Sequence[int], max_texts: int, token_budget: int) -> list[int]:
    """How many texts go in each run when texts of these `costs` (tokens), in order, are cut
    into runs of at most `max_texts` texts and `token_budget` padded tokens (each text padded
    to the run's longest; a text over the budget on its own makes a run of one).

    >>> run_sizes([2, 3, 3, 4], 64, 10), run_sizes([1, 1, 1], 2, 100)
    ([3, 1], [2, 1])
    """
    sizes: list[int] = []
    size = longest = 0
    for cost in costs:
        longest = max(longest, cost)
        if size and not fits(size + 1, (size + 1) * longest, max_texts, token_budget):
            sizes.append(size)
            size, longest = 0, cost
        size += 1
    if size:
        sizes.append(size)
    return sizes


def split_texts(
    texts: Sequence[str],
    max_texts: int,
    token_budget: int,
    costs: Sequence[int] | None = None,
) -> list[list[str]]:
    """`texts` in order, cut into runs as `run_sizes` does; `costs` are the texts' tokens
    (see token_count.py), estimated from characters when not given. Texts sorted shortest
    first make runs of like length.

    >>> split_texts(["a", "b", "c"], 2, 100)
    [['a', 'b'], ['c']]
    >>> [len(run) for run in split_texts(["x" * 2000] * 5, 64, 1024)]  # 502 tokens each
    [2, 2, 1]
    >>> split_texts(["a", "b", "c", "d"], 64, 10, costs=[2, 3, 3, 4])  # 3 x 3, then 1 x 4
    [['a', 'b', 'c'], ['d']]
    """
    if costs is None:
        costs = [estimate_tokens(text) for text in texts]
    runs: list[list[str]] = []
    start = 0
    for size in run_sizes(costs, max_texts, token_budget):
        runs.append(list(texts[start : start + size]))
        start += size
    return runs


@dataclass(eq=False)
class Request:
    """Some texts of one caller, answered together, or one step of a trial (`stage`)."""

    texts: list[str]
    stage: Stage = Stage.CALL
    future: asyncio.Future[list[Item]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    # Each text's tokens, counted by the pool (token_count.py), else estimated here.
    costs: list[int] | None = None
    tokens: int = field(init=False)  # of all the texts, which never change
    queued_at: float = field(default=0.0, init=False)  # on the queue's clock (scheduling.py)
    # A trial's: the failures this text is a suspect of, and whether it was found poison.
    charges: list[PendingCharge] = field(default_factory=list)
    convicted: bool = False
    settled: bool = False  # its charges were acquitted (or dropped): once only
    # A control's: the verdict on its suspect, given as soon as the control is answered.
    verdict: Callable[[asyncio.Future[list[Item]]], None] | None = None

    def __post_init__(self) -> None:
        costs = self.costs if self.costs is not None else [estimate_tokens(t) for t in self.texts]
        self.tokens = sum(costs)

    def resolve(self, items: list[Item]) -> None:
        """Answer the caller (unless it gave up)."""
        if not self.future.done():
            self.future.set_result(items)

    def fail(self, exc: BaseException) -> None:
        """Fail the caller (unless it gave up)."""
        if not self.future.done():
            self.future.set_exception(exc)


class RequestQueue:
    """Retries first, then new requests gathered into batches; `None` from `take` means stop.

    Each free child awaits `take`; `schedule` (scheduling.py) picks the request a batch is
    built around, first come first served unless a rule is on; `clock` (seconds) dates the
    requests for its aging bound.
    """

    def __init__(
        self,
        token_budget: int,
        max_texts: int,
        max_wait: float,
        schedule: Schedule | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._budget = token_budget
        self._max_texts = max_texts
        self._max_wait = max_wait
        self._schedule = schedule or Schedule()
        self._clock = clock
        self._idle = 0  # takers still looking for a batch: the children free now
        self._retries: deque[Request] = deque()
        self._waiting: deque[Request] = deque()
        self._arrived = asyncio.Event()  # set on every put/stop; waiters re-check and clear
        self._stopped = False
        self._alone = False  # the last batch was one request that waited in vain
        self.texts = 0  # texts waiting now (the pool bounds it)

    def put(self, request: Request) -> None:
        """Queue a request (a trial's goes ahead of new work)."""
        request.queued_at = self._clock()
        (self._waiting if request.stage is Stage.CALL else self._retries).append(request)
        self.texts += len(request.texts)
        self._arrived.set()

    def put_back(self, batch: list[Request]) -> None:
        """Return a taken batch to the front of the queue, in order (its child died first)."""
        for request in reversed(batch):
            (self._waiting if request.stage is Stage.CALL else self._retries).appendleft(request)
            self.texts += len(request.texts)
        self._arrived.set()

    def stop(self) -> None:
        """Let `take` return None once the queue is empty."""
        self._stopped = True
        self._arrived.set()

    def take_short(self, max_tokens: int, budget: int) -> list[Request]:
        """Waiting requests whose every text has at most `max_tokens` tokens, oldest first,
        as many as fit `budget` tokens and the text cap; at once, maybe none (an express call
        to a child busy with a longer one, VOLFEFE_PREEMPT=layers). A trial's request is
        never taken: it runs alone."""
        chosen: list[Request] = []
        texts = tokens = 0
        for request in self._waiting:
            if longest_tokens(request) > max_tokens:
                continue
            if not fits(
                texts + len(request.texts), tokens + request.tokens, self._max_texts, budget
            ):
                break
            chosen.append(request)
            texts += len(request.texts)
            tokens += request.tokens
        batch: list[Request] = []
        self._move(batch, chosen)
        return batch

    async def arrival(self) -> bool:
        """Wait for the next request to arrive; False, at once, when the queue is stopped."""
        if not self._stopped:
            self._arrived.clear()
            await self._arrived.wait()
        return not self._stopped

    def drain(self) -> list[Request]:
        """Remove and return every waiting request."""
        requests = [*self._retries, *self._waiting]
        self._retries.clear()
        self._waiting.clear()
        self.texts = 0
        return requests

    async def take(self) -> list[Request] | None:
        """The next batch to send to a child, or None when stopped and empty."""
        self._idle += 1
        try:
            batch = await self._first()
        finally:
            self._idle -= 1
        if batch is None or batch[0].stage is not Stage.CALL:
            return batch
        full = self._fill(batch)  # a waiting request did not fit: no point waiting for more
        if len(batch) > 1:
            self._alone = False
        elif self._alone:
            return batch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait
        waited_in_vain = False
        while not full and self._has_room(batch) and not self._stopped:
            remaining = deadline - loop.time()
            if remaining <= 0:
                waited_in_vain = True
                break
            # Whatever waits now cannot join (another kind, under a scheduling rule): wait
            # for an arrival.
            self._arrived.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
            except TimeoutError:
                waited_in_vain = True
                break
            full = self._fill(batch)
        self._alone = waited_in_vain and len(batch) == 1
        return batch

    async def _first(self) -> list[Request] | None:
        """A trial's request, alone, or the request the next batch is built around (the
        schedule's choice); None when stopped and empty. Waits for an arrival, or until a
        request the schedule holds back for short posts may go."""
        while True:
            if self._retries:
                retry = self._retries.popleft()
                self.texts -= len(retry.texts)
                return [retry]
            wake = math.inf
            if self._waiting:
                anchor, wake = self._choose()
                if anchor is not None:
                    batch: list[Request] = []
                    self._move(batch, [anchor])
                    return batch
            elif self._stopped:
                return None
            self._arrived.clear()
            try:
                async with asyncio.timeout(None if wake == math.inf else wake):
                    await self._arrived.wait()
            except TimeoutError:
                pass  # a request held back has aged: it may take this child now

    def _choose(self) -> tuple[Request | None, float]:
        if not self._schedule.by_length:
            return self._waiting[0], math.inf  # the oldest, whatever its size
        idle = math.inf if self._stopped else self._idle  # draining: no child is kept
        return self._schedule.choose(self._waiting, self._clock(), idle)

    def _has_room(self, batch: list[Request]) -> bool:
        texts = sum(len(j.texts) for j in batch)
        return texts < self._max_texts and sum(j.tokens for j in batch) < self._budget

    def _fill(self, batch: list[Request]) -> bool:
        """Add to `batch` (its first request already chosen) the waiting requests that fit,
        those whose texts are closest in length to that first one before the others. True
        when a waiting request was left out for want of room.

        Like lengths pack well: the child pads each forward pass to its longest text, so a
        call of short posts with one long one among them costs more. The schedule's choice
        goes in the next batch (by default the oldest, so none waits for ever behind texts of
        other lengths); under a scheduling rule a batch holds short requests only or long
        ones only, so no short post waits for a long pass in its own call.
        """
        if not self._waiting:
            return False
        texts = sum(len(j.texts) for j in batch)
        tokens = sum(j.tokens for j in batch)
        anchor = batch[0].tokens / len(batch[0].texts)
        schedule = self._schedule
        kind = schedule.is_short(batch[0])
        chosen: list[Request] = []
        left_out = False
        for request in sorted(self._waiting, key=lambda r: abs(r.tokens / len(r.texts) - anchor)):
            if schedule.by_length and schedule.is_short(request) != kind:
                continue  # another kind of request: not left out for room
            if not fits(
                texts + len(request.texts), tokens + request.tokens, self._max_texts, self._budget
            ):
                left_out = True
                continue
            chosen.append(request)
            texts += len(request.texts)
            tokens += request.tokens
        self._move(batch, chosen)
        return left_out

    def _move(self, batch: list[Request], chosen: list[Request]) -> None:
        """Take `chosen` out of the waiting requests into `batch`."""
        if not chosen:
            return
        taken = set(chosen)
        self._waiting = deque(r for r in self._waiting if r not in taken)
        self.texts -= sum(len(r.texts) for r in chosen)
        batch.extend(chosen)


def longest_tokens(request: Request) -> int:
    """The tokens of a request's longest text."""
    return max(request.costs) if request.costs else request.tokens
