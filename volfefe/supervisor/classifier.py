"""The public API: `Classifier().classify(text)`, its batch form and asyncio twins.

>>> from volfefe import Classifier                                    # doctest: +SKIP
>>> with Classifier() as clf:                                          # doctest: +SKIP
...     clf.classify("Stocks rally after the trade deal").sentiment
'positive'
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Sequence
from typing import Any, Literal, overload

from volfefe.config import Settings
from volfefe.errors import (
    ClassificationFailed,
    ClassifierError,
    ConfigError,
    ForwardPassFailed,
    NoTextError,
    PoolClosed,
)
from volfefe.protocol import EMPTY_TEXT, FORWARD_FAILED, ItemError, Ready, clean_text, is_blank
from volfefe.result import Classification
from volfefe.supervisor.batching import Item
from volfefe.supervisor.latency import Histogram
from volfefe.supervisor.loop_thread import LoopThread
from volfefe.supervisor.owner import PoolOwner
from volfefe.supervisor.token_count import TokenCounter


class Classifier:
    """Classifies financial sentiment in supervised child processes.

    Starts lazily on first use; safe to share between threads and asyncio tasks; close it (or
    use it as a context manager) to stop the children. Keyword arguments override `settings`
    (which default to `Settings.from_env(os.environ)`).

    When its pool breaks (restart budget spent) it rebuilds it after a backoff; calls in
    between fail fast with PoolBroken. A child that can never start (a model that cannot load,
    an impossible device) is a ConfigError from `start()` and from every call.
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        base = settings or Settings.from_env(os.environ)
        self.settings = base.replace(**overrides) if overrides else base
        self._lock = threading.Lock()
        self._runner: LoopThread | None = None
        self._owner: PoolOwner | None = None
        self._closed = False

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> Ready:
        """Boot the children now and wait for the first ready line (else the first call does).

        Raises ConfigError when the children can never start, PoolBroken when they keep failing.
        """
        return self._loop().run(self._wait_ready())

    @property
    def consecutive_rebuild_failures(self) -> int:
        """Rebuilt pools in a row that never got a child ready (0 once one is ready again)."""
        owner = self._owner
        return owner.consecutive_rebuild_failures if owner is not None else 0

    @property
    def config_error(self) -> ConfigError | None:
        """The ConfigError every call gets now because no child can ever start (say the model
        folder was broken after the start), else None. Never starts the classifier."""
        owner = self._owner
        return owner.config_error if owner is not None else None

    @property
    def model_version(self) -> str:
        """The model and revision that answers (starts the classifier if needed)."""
        return self.start().model_version

    def health(self) -> str:
        """What a call meets now: `ready` (a child of the pool in charge got ready and the pool
        is not broken), `starting` (no child ready yet: a call waits for one), or the error a
        call gets at once, as `TypeName: message` (`PoolBroken` while the pool is rebuilt,
        `ConfigError` when no child can ever start). Never starts the classifier.

        >>> Classifier().health()                                        # doctest: +SKIP
        'starting'
        """
        owner = self._owner
        if owner is None:
            return "starting"
        if owner.config_error is not None:
            return f"ConfigError: {owner.config_error}"
        pool = owner.current
        if pool is None:
            return "starting"
        if pool.broken is not None:
            return f"PoolBroken: {pool.broken}"
        return "ready" if pool.was_ready else "starting"

    def pids(self) -> list[int]:
        """Process ids of the running children."""
        pool = self._owner.current if self._owner is not None else None
        return pool.pids() if pool is not None else []

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Each text's tokens as the pool counts them to compose its calls (at most 512, as
        the child truncates): with the model's own tokenizer once the classifier has started
        and when the model has a `tokenizer.json` (every onnx/openvino export, a local folder
        that has one), else estimated from characters. Counted in the caller's thread.

        >>> Classifier().count_tokens(["stocks rally"])  # not started: the estimate
        [5]
        """
        pool = self._owner.current if self._owner is not None else None
        counter = pool.token_counter if pool is not None else TokenCounter()
        cut = self.settings.max_chars + 1
        return counter.count_all([text[:cut] for text in texts])

    def stats(self) -> dict[str, int]:
        """Counters since the classifier started, over every pool it had (rebuilt ones
        included, so they never go back): calls sent to children, texts in them, children
        replaced and recycled, express calls (`VOLFEFE_PREEMPT=layers`: short texts sent to a
        child busy with a long call); and how many times the pool was rebuilt."""
        owner = self._owner
        stats = {"calls": 0, "texts": 0, "restarts": 0, "recycled": 0, "express": 0, "rebuilds": 0}
        if owner is None:
            return stats
        pool = owner.current
        for counters in (owner.retired, pool.stats if pool is not None else {}):
            for name, value in counters.items():
                stats[name] = stats.get(name, 0) + value
        stats["rebuilds"] = owner.rebuilds
        return stats

    def latency(self) -> dict[str, Histogram]:
        """Each length class's histogram of how long texts waited for their answer, queue
        included (supervisor/latency.py); empty before the first call."""
        owner = self._owner
        return dict(owner.latency.histograms) if owner is not None else {}

    def close(self) -> None:
        """Stop taking calls, finish in-flight ones within the grace, then stop every child."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            runner, owner = self._runner, self._owner
        if runner is None:
            return
        if owner is not None:
            runner.run(owner.close())
        runner.stop()

    async def aclose(self, grace: float | None = None) -> None:
        """Async twin of `close()`; `grace` replaces `shutdown_grace` for the calls in flight
        (a job worker that already waited out the grace passes 0)."""
        with self._lock:
            runner, owner = self._runner, self._owner
        if owner is not None and runner is not None and not self._closed:
            await runner.run_async(owner.close(grace))
        self.close()

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Classifier:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- classification ------------------------------------------------------------------
    def classify(self, text: str) -> Classification:
        """The sentiment of one text; raises a ClassifierError subclass on failure."""
        result = self.classify_many([text], return_exceptions=True)[0]
        if isinstance(result, ClassifierError):
            raise result
        return result

    @overload
    def classify_many(
        self, texts: Sequence[str], *, return_exceptions: Literal[False] = False
    ) -> list[Classification]: ...

    @overload
    def classify_many(
        self, texts: Sequence[str], *, return_exceptions: Literal[True]
    ) -> list[Classification | ClassifierError]: ...

    def classify_many(
        self, texts: Sequence[str], *, return_exceptions: bool = False
    ) -> list[Classification] | list[Classification | ClassifierError]:
        """Classify many texts, in order. By default the first failure raises; with
        `return_exceptions=True` each failed text gets its exception in its place."""
        results = self._loop().run(self._classify(texts))
        return _maybe_raise(results, return_exceptions)

    def submit_many(
        self, texts: Sequence[str]
    ) -> concurrent.futures.Future[list[Classification | ClassifierError]]:
        """Start classifying `texts` without waiting, so a caller can keep the pool busy.

        The future gives what `classify_many(texts, return_exceptions=True)` returns;
        cancelling it cancels the call.
        """
        return self._loop().submit(self._classify(texts))

    async def await_rebuilt(self, timeout: float) -> None:
        """Wait until the classifier can take calls again after its pool broke (at once when it
        can now). Raises PoolBroken when it cannot within `timeout` seconds, ConfigError when
        it never can."""
        await self._loop().run_async(self._wait_rebuilt(timeout))

    async def aclassify(self, text: str) -> Classification:
        """Async twin of `classify()`."""
        result = (await self.aclassify_many([text], return_exceptions=True))[0]
        if isinstance(result, ClassifierError):
            raise result
        return result

    async def aclassify_many(
        self, texts: Sequence[str], *, return_exceptions: bool = False
    ) -> list[Classification] | list[Classification | ClassifierError]:
        """Async twin of `classify_many()`; cancelling the caller kills the busy child."""
        results = await self._loop().run_async(self._classify(texts))
        return _maybe_raise(results, return_exceptions)

    # --- internals -----------------------------------------------------------------------
    def _loop(self) -> LoopThread:
        with self._lock:
            if self._closed:
                raise PoolClosed("the classifier is closed")
            if self._runner is None:
                self._runner = LoopThread()
            return self._runner

    async def _wait_ready(self) -> Ready:
        return await self._pool_owner().wait_ready()

    async def _wait_rebuilt(self, timeout: float) -> None:
        await self._pool_owner().wait_rebuilt(timeout)

    def _pool_owner(self) -> PoolOwner:
        # Only on the loop thread: the pool's futures and pipes belong to that loop.
        with self._lock:
            if self._owner is None:
                self._owner = PoolOwner(self.settings)
            return self._owner

    async def _classify(self, texts: Sequence[str]) -> list[Classification | ClassifierError]:
        if isinstance(texts, str):
            raise TypeError("classify_many() takes a sequence of texts, not one string")
        cut = self.settings.max_chars + 1  # the child still sees the text was longer
        cleaned = [clean_text(t[:cut]) if isinstance(t, str) else _not_text(t) for t in texts]
        results: list[Classification | ClassifierError] = [NoTextError()] * len(cleaned)
        todo = [i for i, text in enumerate(cleaned) if not is_blank(text)]
        if not todo:
            return results
        owner = self._pool_owner()
        items, model_version = await owner.classify([cleaned[i] for i in todo])
        for index, item in zip(todo, items, strict=True):
            results[index] = _to_result(item, model_version)
        return results


def _not_text(value: object) -> str:
    raise TypeError(f"texts must be str, got {type(value).__name__}")


def _to_result(item: Item, model_version: str) -> Classification | ClassifierError:
    if isinstance(item, ClassifierError):
        return item
    if isinstance(item, ItemError):
        if item.type == EMPTY_TEXT:
            return NoTextError()
        if item.type == FORWARD_FAILED:  # the child lives on; the text may pass later
            return ForwardPassFailed(item.message, item.type, item.traceback)
        return ClassificationFailed(item.message, item.type, item.traceback)
    return Classification(
        item.sentiment, item.confidence, model_version, item.raw_scores, item.truncated, item.tokens
    )


def _maybe_raise(
    results: list[Classification | ClassifierError], return_exceptions: bool
) -> list[Classification] | list[Classification | ClassifierError]:
    if return_exceptions:
        return results
    out: list[Classification] = []
    for result in results:
        if isinstance(result, ClassifierError):
            raise result
        out.append(result)
    return out
