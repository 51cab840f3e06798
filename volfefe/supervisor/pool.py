"""The supervisor: N ports sharing one queue of requests, with an OTP-style restart budget.

```
callers ──classify(texts)──> requests ──> RequestQueue ──batch──> slot 1: Port ─ child
        (bounded: Overloaded)  (one deadline each)  (batching.py)  slot 2: Port ─ child
```

- The pool owns every request it accepted, queued or in flight (`_accepted`). Whatever ends
  the pool (a break, close after the grace, a slot dying of any exception) fails each of
  them at once with a typed error; each also fails with RequestTimeout at its deadline.
- Each slot boots its child, then takes one batch at a time (the queue's schedule,
  scheduling.py, picks which request it is built around). A child that crashes, hangs or
  writes garbage fails only the call in flight; it is SIGKILLed and reaped in the background
  while the slot boots a replacement at once. A child that dies while idle is replaced
  before a batch reaches it; so is one that does not answer a ping after `idle_ping` idle
  seconds (frozen by SIGSTOP, stuck in a lock), instead of costing the next call its
  call_timeout. With `max_child_calls` / `max_child_rss_mb` a child is retired
  (closed gracefully) and replaced after a call, off by default.
- With `VOLFEFE_PREEMPT=layers`, while a slot's call holding a text over `short_tokens`
  runs, the slot sends its child the short requests as they arrive (when no child is idle to
  take them), each batch of them an express call, several in flight if need be: the child
  answers them between two layers of the long call. Behind a call of long texts (over the
  medium class's bound, latency.py) medium requests go express too, in calls of their own
  once no short one waits. A trial's call never gets one. When the
  child dies, the call and its express calls fail together: their texts go on trial, and
  the restart budget is charged once.
- When a call fails with a WorkerError, each text of it goes on trial (trial.py): alone, then
  alone as the first call of a fresh child, then the known-good control on a fresh child.
  Only a text that fails both lone calls while the control passes is answered with
  PoisonText; a fault that strikes whatever the text (a child killed from outside, a child
  that fails its N-th call) never convicts one.
- `close` lets queued and in-flight calls finish within `shutdown_grace` (a queued call may
  wait for a booting child that long); with no call accepted, a booting child is stopped at
  once, so a close never waits for a boot that nobody needs, nor for boot_timeout.
- Only child faults count against the restart budget (`max_restarts` in `restart_window`);
  a child burnt because every caller gave up, retired, or replaced so a trial's call is the
  first of its child, does not; nor does a failure a poison text explains (trial.py). A
  spent budget breaks the pool (PoolBroken); so does a child that exits with the
  boot-failure status. The pool's owner (the Classifier) then rebuilds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from volfefe.config import Settings
from volfefe.errors import (
    ClassifierError,
    ConfigError,
    Overloaded,
    PoolBroken,
    PoolClosed,
    RequestTimeout,
    WorkerBootError,
    WorkerCrashed,
    WorkerError,
)
from volfefe.protocol import ItemError, ItemResult, Ready
from volfefe.supervisor.batching import Item, Request, RequestQueue, longest_tokens, split_texts
from volfefe.supervisor.latency import MEDIUM_TOKENS, LatencyByClass
from volfefe.supervisor.policy import RestartBudget, boot_backoff, is_impossible_boot, poison_from
from volfefe.supervisor.port import KILL_WAIT, Port
from volfefe.supervisor.provision import backend_args
from volfefe.supervisor.scheduling import Schedule
from volfefe.supervisor.token_count import TokenCounter
from volfefe.supervisor.trial import CONTROL_TEXT, PendingCharge, Stage

logger = logging.getLogger(__name__)
MIB = 1024 * 1024
COUNT_INLINE = 64  # texts a call counts on the event loop; more are counted in a thread


class _Slot:
    def __init__(self, index: int) -> None:
        self.index = index
        self.port: Port | None = None
        self.failures = 0
        self.booting = False  # no child up yet: a close with no call waiting stops it at once
        self.idle = False  # waiting for a batch: short work is left to it, not sent express


Express = tuple[list[Request], asyncio.Task[list[ItemResult | ItemError]]]
"""An express call in flight: its requests and the port's call."""


class Pool:
    """Supervises `settings.workers` children; `classify` may be awaited by many tasks at once.

    `on_broken` is called once, on the loop, when the pool breaks (its owner rebuilds it).
    """

    def __init__(
        self,
        settings: Settings,
        on_broken: Callable[[PoolBroken], None] | None = None,
        latency: LatencyByClass | None = None,
    ) -> None:
        self._settings = settings
        self._on_broken = on_broken
        self._queue = RequestQueue(
            settings.batch_tokens,
            settings.batch_size,
            settings.batch_wait,
            Schedule.from_settings(settings),
        )
        self._slots = [_Slot(i) for i in range(settings.workers)]
        self._budget = RestartBudget(settings.max_restarts, settings.restart_window)
        self._runners: list[asyncio.Task[None]] = []
        self._accepted: set[Request] = set()
        self._gone: set[Port] = set()  # killed or retired ports not reaped yet
        self._tasks: set[asyncio.Task[None]] = set()  # retiring children
        self._ready: asyncio.Future[Ready] = asyncio.get_running_loop().create_future()
        self.broken: PoolBroken | None = None
        self._closing = False
        self.stats = {"calls": 0, "texts": 0, "restarts": 0, "recycled": 0, "express": 0}
        self._backend_args: list[str] | None = None
        self._counter = TokenCounter()  # the model's tokenizer once the children's are known
        self._preparing = asyncio.Lock()
        self.latency = latency or LatencyByClass()  # each text's wait, by length class

    def start(self) -> None:
        """Start one runner per slot; children boot concurrently in the background."""
        if not self._runners:
            logger.info("starting %d children", len(self._slots))
            self._runners = [
                asyncio.create_task(self._run(slot), name=f"volfefe-slot-{slot.index}")
                for slot in self._slots
            ]

    async def wait_ready(self) -> Ready:
        """The first child's ready line (raises PoolBroken when no child can start)."""
        self.start()
        return await asyncio.shield(self._ready)

    @property
    def was_ready(self) -> bool:
        """True once a child of this pool has been ready."""
        return self._ready.done() and self._ready.exception() is None

    @property
    def model_version(self) -> str:
        """The model_version of this pool's children ('' before one is ready)."""
        return self._ready.result().model_version if self.was_ready else ""

    @property
    def token_counter(self) -> TokenCounter:
        """How this pool counts a text's tokens (the model's tokenizer once the children's
        backend is known, else an estimate)."""
        return self._counter

    @property
    def queued(self) -> int:
        """Texts waiting for a child now (calls in flight not included)."""
        return self._queue.texts

    def pids(self) -> list[int]:
        """Process ids of the children that are up now."""
        return [
            s.port.pid
            for s in self._slots
            if s.port is not None and not s.port.dead and s.port.pid is not None
        ]

    async def classify(self, texts: Sequence[str]) -> list[Item]:
        """One item per text, in order: a result, the child's error, or a ClassifierError.

        Raises PoolBroken / PoolClosed when the pool takes no calls, and Overloaded (at once,
        nothing queued) when the queue holds `max_queued` texts already. Texts are cut to
        `max_chars + 1` characters here, so a huge text never crosses the pipe and the child
        still knows it was longer (`truncated`).
        """
        self._check_open()
        started = asyncio.get_running_loop().time()
        limit = self._settings.max_queued
        if self._queue.texts and self._queue.texts + len(texts) > limit:
            raise Overloaded(
                f"{self._queue.texts} texts are waiting already (max_queued={limit}); "
                "try again later"
            )
        self.start()
        cut = self._settings.max_chars + 1
        # Shortest first, so each request holds texts of like length: the child pads a forward
        # pass to its longest text, and a run of mixed lengths packs badly. Answers go back
        # in the caller's order.
        sent = [text[:cut] for text in texts]
        if len(sent) > COUNT_INLINE:  # a big bulk is counted off the loop the children need
            counts = await asyncio.to_thread(self._counter.count_all, sent)
            self._check_open()  # the pool may have closed or broken meanwhile
        else:
            counts = self._counter.count_all(sent)
        order = sorted(range(len(texts)), key=counts.__getitem__)
        costs = [counts[i] for i in order]
        # Cut by the forward-pass budget: a run is one call and one pass of the child.
        settings = self._settings
        runs = split_texts(
            [sent[i] for i in order], settings.batch_size, settings.forward_tokens, costs
        )
        requests: list[Request] = []
        first = 0
        for run in runs:
            requests.append(Request(run, costs=costs[first : first + len(run)]))
            first += len(run)
        for request in requests:
            self._accept(request)
            self._queue.put(request)
        # One deadline for the call; a bulk call of many requests gets one per round of them
        # (a caller's consecutive requests never share a child's call: each is full or ends
        # where the next text did not fit).
        rounds = -(-len(requests) // self._settings.workers)
        timeout = self._settings.effective_request_timeout * max(1, rounds)
        loop = asyncio.get_running_loop()
        expiry = loop.call_later(timeout, _expire, requests, timeout)
        try:
            await asyncio.wait([r.future for r in requests])
        except BaseException:
            for request in requests:
                request.future.cancel()
            raise
        finally:
            expiry.cancel()
            _seen(requests)
        waited = loop.time() - started
        for cost in costs:
            self.latency.observe(cost, waited)
        answers = (item for request in requests for item in _items_of(request))
        by_index = dict(zip(order, answers, strict=True))
        return [by_index[index] for index in range(len(texts))]

    async def close(self, grace: float | None = None) -> None:
        """Stop taking calls, let queued and in-flight calls finish in the grace
        (`shutdown_grace` unless given), then fail whatever is left with PoolClosed and stop
        the children (never waits without bound). When no call is queued or in flight, a
        child still booting is stopped at once: a close waits for a boot only when a call
        waits for it, and then within the grace."""
        if self._closing:
            return
        self._closing = True
        self._queue.stop()
        if self._runners:
            for slot, runner in zip(self._slots, self._runners, strict=True):
                if slot.booting and not self._accepted:  # a boot that no call waits for
                    runner.cancel()
            wait = self._settings.shutdown_grace if grace is None else grace
            _, late = await asyncio.wait(self._runners, timeout=wait)
            self._fail_all(PoolClosed("the classifier was closed before this call finished"))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._fail_all(PoolClosed("the classifier was closed before this call ran"))
        ports = [s.port for s in self._slots if s.port is not None]
        await asyncio.gather(*(p.close(grace=2.0) for p in ports), return_exceptions=True)
        if self._gone:
            await asyncio.wait([p.exited for p in self._gone], timeout=KILL_WAIT)
        if not self._ready.done():
            self._ready.set_exception(PoolClosed("the classifier was closed"))
            self._ready.exception()  # retrieved: nobody may be waiting

    def _check_open(self) -> None:
        if self.broken is not None:
            raise self.broken
        if self._closing:
            raise PoolClosed("the classifier is closed")

    def _accept(self, request: Request) -> None:
        self._accepted.add(request)
        request.future.add_done_callback(lambda _: self._accepted.discard(request))

    async def _run(self, slot: _Slot) -> None:
        take: asyncio.Task[list[Request] | None] | None = None
        try:
            while (port := await self._boot(slot)) is not None:
                if take is None:
                    take = asyncio.create_task(self._queue.take())
                slot.idle = True
                try:
                    await asyncio.wait(
                        [take, port.exited],
                        timeout=self._settings.idle_ping or None,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    slot.idle = False
                if port.exited.done():  # died while idle: replace it before a batch reaches it
                    await self._child_died_idle(slot, port)
                    if take.done() and (batch := take.result()):
                        self._queue.put_back(batch)
                        take = None
                    continue
                if not take.done():  # idle for idle_ping seconds: is it frozen?
                    await self._ping(slot, port)
                    continue
                batch, take = take.result(), None
                if batch is None:
                    return
                batch = [request for request in batch if not request.future.done()]
                if batch and batch[0].stage.needs_fresh_child and port.calls:
                    logger.info("replacing child %s: a trial's call must be its first", port.pid)
                    self._forget(slot)  # not the child's fault: the budget is not charged
                    if (port := await self._boot(slot)) is None:
                        return  # the pool broke or closes: it fails the batch's requests
                if batch:
                    await self._serve(slot, port, batch)
                    self._maybe_recycle(slot, port)
        except asyncio.CancelledError:
            if slot.port is not None:
                slot.port.kill()
            raise
        except Exception as exc:  # a bug or an OSError must not leave callers waiting
            logger.exception("slot %d failed", slot.index)
            self._break(exc)
        finally:
            if take is not None:
                take.cancel()
            if self.broken is not None:  # a broken pool's children serve nobody: stop them
                self._forget(slot)

    async def _boot(self, slot: _Slot) -> Port | None:
        slot.booting = True
        try:
            return await self._boot_loop(slot)
        finally:
            slot.booting = False

    async def _boot_loop(self, slot: _Slot) -> Port | None:
        while slot.port is None or slot.port.dead:
            if self.broken is not None or self._closing:
                return None
            await asyncio.sleep(boot_backoff(slot.failures))
            if self.broken is not None or self._closing:  # it broke while we waited
                return None
            slot.port = None
            try:
                slot.port = Port(self._settings, await self._children_backend())
                ready = await slot.port.start()
            except (WorkerBootError, ConfigError) as exc:  # a failed export comes here too
                self._forget(slot)
                slot.failures += 1
                if is_impossible_boot(exc) or not self._budget.record():
                    self._break(exc)
                    return None
                logger.warning("child failed to boot, restarting: %s", exc)
                continue
            slot.failures = 0
            logger.info(
                "child %s ready: %s (%s, %d threads)",
                ready.pid,
                ready.model_version,
                ready.device,
                ready.threads,
            )
            if not self._ready.done():
                self._ready.set_result(ready)
        return slot.port

    async def _children_backend(self) -> list[str]:
        async with self._preparing:  # one export however many slots boot at once
            if self._backend_args is None:
                args = await backend_args(self._settings)
                self._counter = await asyncio.to_thread(
                    TokenCounter.for_children, args, self._settings.model
                )
                self._backend_args = args
            return self._backend_args

    async def _serve(self, slot: _Slot, port: Port, batch: list[Request]) -> None:
        texts = [text for request in batch for text in request.texts]
        self.stats["calls"] += 1
        self.stats["texts"] += len(texts)
        call = asyncio.create_task(port.call(texts))
        failed: list[tuple[list[Request], WorkerError]] = []  # express calls that failed
        try:
            answered = await self._await_call(call, batch, port, failed)
        except asyncio.CancelledError:  # the pool is closing past its grace
            call.cancel()
            raise
        if not answered:  # every caller gave up: the child may still compute, so burn it
            self._forget(slot)  # not the child's fault: the budget is not charged
            for short, _ in failed:  # nor the express call's: its requests go again
                self._queue.put_back(short)
            return
        try:
            items: list[Item] = list(call.result())
        except WorkerError as exc:
            logger.warning("child %s failed: %s", port.pid, exc)
            self._call_failed(slot, port, [batch, *(short for short, _ in failed)], exc)
            return
        self._answer(batch, items)
        if failed:  # the child died in an express call after answering the long one
            self._call_failed(slot, port, [short for short, _ in failed], failed[0][1])

    def _answer(self, batch: list[Request], items: list[Item]) -> None:
        """Give each request of an answered call its items."""
        start = 0
        for request in batch:
            request.resolve(items[start : start + len(request.texts)])
            _settle(request)  # before the next batch: an acquittal may spend the budget
            if request.verdict is not None:
                request.verdict(request.future)
            start += len(request.texts)

    async def _await_call(
        self,
        call: asyncio.Task[list[ItemResult | ItemError]],
        batch: list[Request],
        port: Port,
        failed: list[tuple[list[Request], WorkerError]],
    ) -> bool:
        """Wait for the call while a caller still waits for it; False when none does. With
        preemption, send the child express calls meanwhile, one as soon as short requests
        wait, however many are in flight (failed ones land in `failed`)."""
        futures = [request.future for request in batch]
        expresses: list[Express] = []
        arrival: asyncio.Task[bool] | None = None
        may_express = self._may_express(batch)
        try:
            while not call.done():
                waiting = [f for f in futures if not f.done()]
                if not waiting:
                    call.cancel()
                    with contextlib.suppress(asyncio.CancelledError, WorkerError):
                        await call
                    return False
                waiters: list[asyncio.Future[object]] = [call, *waiting]  # type: ignore[list-item]
                if may_express:
                    express = self._send_express(port, batch)
                    if express is not None:
                        expresses.append(express)
                        continue  # more may wait than one call's budget
                    arrival = arrival or asyncio.create_task(self._queue.arrival())
                    waiters.append(arrival)  # type: ignore[arg-type]
                waiters.extend(e[1] for e in expresses)  # type: ignore[misc]
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if arrival is not None and arrival.done():
                    may_express = arrival.result()  # False: the queue stopped
                    arrival = None
                for express in [e for e in expresses if e[1].done()]:
                    expresses.remove(express)
                    self._express_done(express, port, failed)
            return True
        except asyncio.CancelledError:
            for express in expresses:
                express[1].cancel()  # the port burns the child
            expresses.clear()
            raise
        finally:
            if arrival is not None:
                arrival.cancel()
            if expresses:
                # The long call ended first: the short replies follow at once, or the child
                # died and the express calls fail with it (within their own call_timeout).
                await asyncio.wait([e[1] for e in expresses])
                for express in expresses:
                    self._express_done(express, port, failed)

    def _may_express(self, batch: list[Request]) -> bool:
        """May express calls go beside this call? Only with preemption, never beside a trial's
        call, and only when the call holds a text longer than a short one."""
        threshold = self._settings.short_tokens
        return (
            self._settings.preempt == "layers"
            and batch[0].stage is Stage.CALL
            and max(longest_tokens(request) for request in batch) > threshold
        )

    def _send_express(self, port: Port, running: list[Request]) -> Express | None:
        """An express call of the short requests waiting now, else (behind a long call) of the
        medium ones, or None (no child idle to take them, and shorter in all than the running
        call, so the child runs it at a pause)."""
        if port.dead or any(slot.idle for slot in self._slots):
            return None
        budget = min(self._settings.batch_tokens, sum(r.tokens for r in running) - 1)
        short = self._queue.take_short(self._settings.short_tokens, budget)
        if not short and max(longest_tokens(r) for r in running) > MEDIUM_TOKENS:
            short = self._queue.take_short(MEDIUM_TOKENS, budget)
        short = [request for request in short if not request.future.done()]
        if not short:
            return None
        texts = [text for request in short for text in request.texts]
        self.stats["calls"] += 1
        self.stats["texts"] += len(texts)
        self.stats["express"] += 1
        return short, asyncio.create_task(port.call(texts))

    def _express_done(
        self, express: Express, port: Port, failed: list[tuple[list[Request], WorkerError]]
    ) -> None:
        short, call = express
        try:
            items: list[Item] = list(call.result())
        except WorkerError as exc:
            logger.warning("child %s failed in an express call: %s", port.pid, exc)
            failed.append((short, exc))
            return
        self._answer(short, items)

    def _maybe_recycle(self, slot: _Slot, port: Port) -> None:
        if port.dead or slot.port is not port:
            return
        max_calls, max_mib = self._settings.max_child_calls, self._settings.max_child_rss_mb
        why = ""
        if max_calls and port.calls >= max_calls:
            why = f"it served {port.calls} calls (max_child_calls={max_calls})"
        elif max_mib and (rss := port.rss_bytes()) is not None and rss > max_mib * MIB:
            why = f"its memory is {rss // MIB} MiB (max_child_rss_mb={max_mib})"
        if not why:
            return
        logger.info("recycling child %s: %s", port.pid, why)
        self.stats["recycled"] += 1
        slot.port = None
        self._gone.add(port)
        port.exited.add_done_callback(lambda _: self._gone.discard(port))
        closing = asyncio.create_task(port.close(grace=self._settings.shutdown_grace))
        self._tasks.add(closing)
        closing.add_done_callback(self._tasks.discard)

    async def _ping(self, slot: _Slot, port: Port) -> None:
        """Replace an idle child that no longer answers (frozen, stuck, garbling) before a
        batch reaches it: a child fault, so the budget is charged."""
        try:
            await port.ping()
        except WorkerError as exc:
            logger.warning("replacing idle child %s: %s", port.pid, exc)
            self._replaced(slot, exc)

    async def _child_died_idle(self, slot: _Slot, port: Port) -> None:
        await port.stderr_closed(within=1.0)  # its last words, for the report
        exc = WorkerCrashed(
            pid=port.pid, returncode=port.exited.result(), stderr=port.stderr_tail(), idle=True
        )
        logger.warning("replacing child %s: %s", port.pid, exc)
        self._replaced(slot, exc)

    def _forget(self, slot: _Slot) -> None:
        port, slot.port = slot.port, None
        if port is None:
            return
        port.kill()
        if port.pid is not None and not port.exited.done():
            self._gone.add(port)
            port.exited.add_done_callback(lambda _: self._gone.discard(port))

    def _replaced(self, slot: _Slot, cause: BaseException) -> None:
        self._forget(slot)
        self.stats["restarts"] += 1
        self._charge(cause)

    def _charge(self, cause: BaseException) -> None:
        """Count one child fault against the restart budget; break the pool when it is spent."""
        if not self._budget.record():
            self._break(cause)

    def _call_failed(
        self, slot: _Slot, port: Port, calls: list[list[Request]], exc: WorkerError
    ) -> None:
        """Each text of the failed calls (a call and its express call fail together: one
        child) takes the next step of its trial (trial.py)."""
        pending: PendingCharge | None = None
        if port.dead:
            self._forget(slot)
            self.stats["restarts"] += 1
            if calls[0][0].stage is Stage.CONTROL:  # children fail whatever they are given
                self._charge(exc)
            else:  # charged once, unless a poison text of the calls explains it
                suspects = sum(len(request.texts) for batch in calls for request in batch)
                pending = PendingCharge(suspects, lambda: self._charge(exc))
        for batch in calls:
            self._put_on_trial(batch, exc, pending)

    def _put_on_trial(
        self, batch: list[Request], exc: WorkerError, pending: PendingCharge | None
    ) -> None:
        texts = sum(len(request.texts) for request in batch)
        for request in batch:
            if request.stage is Stage.CONTROL:
                request.resolve([exc])
                if request.verdict is not None:
                    request.verdict(request.future)
                continue
            after = request.stage.after_failure(texts)
            if pending is not None:
                request.charges.append(pending)
            if self.broken is not None:
                request.resolve([self.broken] * len(request.texts))
            elif after is None:
                self._hear_control(request, exc)
            elif len(request.texts) > 1:
                self._split(request, after)
            else:
                self._on_trial(request, after)

    def _on_trial(self, request: Request, stage: Stage) -> None:
        """Queue a one-text request for this step of its trial, ahead of new work."""
        if request.stage is Stage.CALL:  # first step: settle its charges however it ends
            request.future.add_done_callback(lambda future: _settle(request, future))
        request.stage = stage
        self._queue.put(request)

    def _hear_control(self, suspect: Request, exc: WorkerError) -> None:
        """The suspect failed alone twice: run the control, then give the verdict."""
        control = Request([CONTROL_TEXT], stage=Stage.CONTROL)

        def verdict(future: asyncio.Future[list[Item]]) -> None:
            failed = future.cancelled() or future.exception() is not None  # read either way
            if suspect.future.done():  # its caller gave up meanwhile
                return
            passed = not failed and isinstance(future.result()[0], ItemResult)
            if passed:
                suspect.convicted = True
                for charge in suspect.charges:
                    charge.convicted()
                logger.warning("poison text: %s", exc)
                suspect.resolve([poison_from(exc)])
            else:  # the fault strikes whatever the text: not the suspect's
                suspect.resolve([exc])
                _settle(suspect)  # now: the acquittal may break the pool before the next boot

        control.verdict = verdict  # called by the pool as it answers the control
        control.future.add_done_callback(verdict)  # and for any other end (close, break)
        self._accept(control)
        self._queue.put(control)

    def _split(self, request: Request, stage: Stage) -> None:
        """Put each text of a request from a failed call on trial, alone, ahead of new work."""
        parts = [Request([text], charges=list(request.charges)) for text in request.texts]

        def collect(_: object) -> None:
            if all(p.future.done() for p in parts):  # read even when failed from above
                request.resolve([_only_item(p.future) for p in parts])

        def cancel_parts(future: asyncio.Future[list[Item]]) -> None:
            for part in parts:
                if future.cancelled():
                    part.future.cancel()
                elif future.exception() is not None:  # failed from above (timeout, close)
                    part.fail(future.exception() or PoolClosed("cancelled"))

        request.future.add_done_callback(cancel_parts)
        for part in parts:
            part.future.add_done_callback(collect)
            self._accept(part)
            self._on_trial(part, stage)

    def _break(self, cause: BaseException) -> None:
        if self.broken is not None:
            return
        broken = PoolBroken(f"the worker pool stopped restarting children: {cause}")
        broken.__cause__ = cause
        self.broken = broken
        logger.info("%s", broken)  # raised to every caller, so not logged as an error too
        self._fail_all(broken)
        self._queue.stop()  # runners waiting on the queue wake up and exit
        if not self._ready.done():
            self._ready.set_exception(broken)
            self._ready.exception()
        if self._on_broken is not None:
            self._on_broken(broken)

    def _fail_all(self, exc: ClassifierError) -> None:
        """Fail every request the pool accepted, queued or in flight, at once."""
        self._queue.drain()
        for request in list(self._accepted):
            request.fail(exc)


def _expire(requests: list[Request], timeout: float) -> None:
    for request in requests:
        request.fail(RequestTimeout(timeout))


def _seen(requests: list[Request]) -> None:
    """Mark the error of each finished request as read: when one of a call's requests ends
    the whole call (the pool broke or closed), the others carry the same news."""
    for request in requests:
        if request.future.done() and not request.future.cancelled():
            request.future.exception()


def _items_of(request: Request) -> list[Item]:
    if request.future.cancelled():
        return [PoolClosed("the call was cancelled")] * len(request.texts)
    exc = request.future.exception()
    if exc is None:
        return request.future.result()
    if isinstance(exc, ClassifierError) and not isinstance(exc, (PoolBroken, PoolClosed)):
        return [exc] * len(request.texts)
    raise exc  # the pool's own end is the whole call's error


def _settle(request: Request, future: asyncio.Future[list[Item]] | None = None) -> None:
    """A trial's request is answered or given up: unless convicted, it acquits its charges,
    once. The pool calls it as it answers (so a charge lands before the next batch), and it
    is the future's done callback for every other end. There its error is retrieved: a part
    of a caller's request that failed as a whole (its deadline, a close) has nobody else to
    read it."""
    if future is not None and not future.cancelled():
        future.exception()
    if request.settled:
        return
    request.settled = True
    if not request.convicted:
        for charge in request.charges:
            charge.acquitted()


def _only_item(future: asyncio.Future[list[Item]]) -> Item:
    if future.cancelled():
        return PoolClosed("cancelled")
    exc = future.exception()
    if exc is not None:
        return exc if isinstance(exc, ClassifierError) else WorkerError(str(exc))
    return future.result()[0]
