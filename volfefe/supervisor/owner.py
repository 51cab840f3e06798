"""The pool's supervisor: rebuild a broken pool after a backoff, stop on configuration errors.

```
Pool ──breaks (budget spent)──> wait rebuild_backoff x 2^failures (capped) ──> new Pool
  │                               calls meanwhile: PoolBroken at once (transient)
  └──a child exits with status 3 at boot, or the settings are refused (ConfigError) while
     preparing the children──> ConfigError for start() and every call; no rebuild
```

In OTP a supervisor that gives up exits and its own supervisor restarts it; here the owner
plays that part for its one pool. `consecutive_rebuild_failures` counts rebuilt pools in a row
that never became ready, so a host (the job worker) can exit non-zero after K of them.
Everything here runs on the Classifier's loop thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from volfefe.config import Settings
from volfefe.errors import ConfigError, PoolBroken
from volfefe.protocol import Ready
from volfefe.supervisor.batching import Item
from volfefe.supervisor.latency import LatencyByClass
from volfefe.supervisor.policy import is_impossible_boot, rebuild_backoff
from volfefe.supervisor.pool import Pool

logger = logging.getLogger(__name__)


class PoolOwner:
    """Holds the current Pool and replaces it when it breaks."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: Pool | None = None
        self._rebuild: asyncio.Task[None] | None = None
        self._closed = False
        self.config_error: ConfigError | None = None
        self.consecutive_rebuild_failures = 0
        self.rebuilds = 0
        self.retired: dict[str, int] = {}  # counters of replaced pools: totals never go back
        self._replaced = asyncio.Event()  # set when a new pool takes charge, or none can
        self.latency = LatencyByClass()  # shared by every pool it makes: totals never go back

    @property
    def current(self) -> Pool | None:
        """The pool now in charge (None before first use)."""
        return self._pool

    def pool(self) -> Pool:
        """The pool in charge, made on first use; ConfigError when no pool can ever work."""
        if self.config_error is not None:
            raise self.config_error
        if self._pool is None:
            self._pool = Pool(self._settings, on_broken=self._on_broken, latency=self.latency)
        return self._pool

    async def wait_ready(self) -> Ready:
        """The first ready line of the pool in charge (ConfigError, PoolBroken)."""
        try:
            return await self.pool().wait_ready()
        except PoolBroken:
            self._raise_config_error()
            raise

    async def wait_rebuilt(self, timeout: float) -> None:
        """Return once the pool in charge is ready; while it is broken, wait for the rebuild.

        Raises ConfigError when no pool can ever work, PoolBroken when no pool is ready within
        `timeout` seconds.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    pool = self.pool()
                    if pool.broken is None:
                        try:
                            await pool.wait_ready()
                            return
                        except PoolBroken:
                            pass  # it broke while starting: wait for the next one
                    self._replaced.clear()
                    if self._pool is pool and self.config_error is None:
                        await self._replaced.wait()
        except TimeoutError:
            self._raise_config_error()
            raise PoolBroken(f"the worker pool was not rebuilt within {timeout:g} s") from None

    async def classify(self, texts: Sequence[str]) -> tuple[list[Item], str]:
        """Items for `texts` and the model_version of the pool that answered ('' if none)."""
        pool = self.pool()
        try:
            items = await pool.classify(texts)
        except PoolBroken:
            self._raise_config_error()
            raise
        self._raise_config_error()
        return items, pool.model_version

    async def close(self, grace: float | None = None) -> None:
        """Stop rebuilding and close the pool in charge (see `Pool.close` for `grace`)."""
        self._closed = True
        if self._rebuild is not None:
            self._rebuild.cancel()
            await asyncio.gather(self._rebuild, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close(grace)

    def _raise_config_error(self) -> None:
        if self.config_error is not None:
            raise self.config_error

    def _on_broken(self, broken: PoolBroken) -> None:
        cause = broken.__cause__
        if isinstance(cause, ConfigError):  # the settings were refused before any child ran
            self.config_error = cause
            logger.error("%s", cause)
            return
        if is_impossible_boot(cause):
            error = ConfigError(
                f"the children cannot start with these settings (model {self._settings.model!r}, "
                f"device {self._settings.device!r}): {cause}"
            )
            error.__cause__ = cause
            self.config_error = error
            logger.error("%s", error)
            self._replaced.set()
            return
        if self._closed:
            return
        pool = self._pool
        if self.rebuilds and pool is not None and not pool.was_ready:
            self.consecutive_rebuild_failures += 1
        delay = rebuild_backoff(
            self.consecutive_rebuild_failures,
            self._settings.rebuild_backoff,
            self._settings.rebuild_backoff_max,
        )
        logger.warning(
            "rebuilding the worker pool in %g s (%d failed rebuilds in a row) because %s",
            delay,
            self.consecutive_rebuild_failures,
            broken,
        )
        self._rebuild = asyncio.create_task(self._rebuild_after(delay))

    async def _rebuild_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._closed:
            return
        old = self._pool
        if old is not None:
            await old.close()  # its children are dead or dying; bounded
        fresh = Pool(self._settings, on_broken=self._on_broken, latency=self.latency)
        retired = dict(self.retired)
        for name, value in (old.stats if old is not None else {}).items():
            retired[name] = retired.get(name, 0) + value
        self._pool, self.retired = fresh, retired
        self.rebuilds += 1
        self._replaced.set()
        try:
            ready = await fresh.wait_ready()
        except PoolBroken:
            return  # _on_broken has counted it and planned the next try
        self.consecutive_rebuild_failures = 0
        logger.info("the worker pool is rebuilt: child %s ready", ready.pid)
