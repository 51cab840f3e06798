"""The server's one Classifier, replaced when its pool breaks (the supervisor's supervisor).

```
start ──boot──> ready ──(PoolBroken: restart budget spent, or boot failed)──> broken
                  ^                                                            │
                  └──────── new Classifier <── REBUILD_DELAY seconds ──────────┘
```
While broken the server keeps answering: /api/v1/classify gets 503 with Retry-After and
/readyz says why, so a load balancer sends the traffic elsewhere; the server never sits
running but useless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from volfefe.config import Settings
from volfefe.errors import VolfefeError
from volfefe.protocol import Ready
from volfefe.supervisor.classifier import Classifier

logger = logging.getLogger(__name__)

REBUILD_DELAY = 10.0  # seconds between a broken pool and its replacement


class Lifeline:
    """Owns the current Classifier: boots it in the background, replaces it when broken."""

    def __init__(self, settings: Settings, rebuild_delay: float = REBUILD_DELAY) -> None:
        self.settings = settings
        self.current = Classifier(settings)
        self.ready: Ready | None = None  # the current classifier's first ready line
        self.boot_error: VolfefeError | None = None
        self.rebuilds = 0
        self._delay = rebuild_delay
        self._boot_task: asyncio.Task[None] | None = None
        self._rebuild_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Boot the children without holding up the server."""
        self._boot_task = asyncio.create_task(self._boot(self.current))

    def broken(self, classifier: Classifier) -> None:
        """`classifier` answered PoolBroken: replace it (once) after the delay."""
        if classifier is self.current and self._rebuild_task is None:
            self._rebuild_task = asyncio.create_task(self._rebuild(classifier))

    async def close(self) -> None:
        """Stop booting or rebuilding, then close the current classifier."""
        for task in (self._boot_task, self._rebuild_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.current.aclose()

    async def _boot(self, classifier: Classifier) -> None:
        try:
            ready = await asyncio.to_thread(classifier.start)
        except VolfefeError as exc:
            if classifier is self.current:
                self.boot_error = exc
                logger.error("the classifier could not start: %s", exc)
                self.broken(classifier)
            return
        if classifier is self.current:
            self.ready, self.boot_error = ready, None

    async def _rebuild(self, old: Classifier) -> None:
        logger.warning("the classifier's pool is broken; a new one starts in %g s", self._delay)
        await asyncio.sleep(self._delay)
        self.current = Classifier(self.settings)
        self.ready = None
        self.rebuilds += 1
        self._rebuild_task = None
        await old.aclose()
        self._boot_task = asyncio.create_task(self._boot(self.current))
