"""uvicorn, told to end the event streams as soon as a stop signal arrives: an open
`/api/v1/stream` would otherwise hold the shutdown for the whole graceful timeout.

Slow or idle clients are bounded by settings: a request head must arrive within
`http_header_timeout` (header_deadline.py) and fit in `http_max_header_bytes`, an idle
keep-alive connection closes after `http_keep_alive`, and past `http_max_connections`
open connections uvicorn answers 503."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from volfefe.config import Settings
from volfefe.protocol import Ready
from volfefe.supervisor.classifier import Classifier
from volfefe.web.app import create_app
from volfefe.web.header_deadline import with_header_deadline

logger = logging.getLogger(__name__)


class Server(uvicorn.Server):
    """A uvicorn server whose stop signal also ends every SSE stream."""

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Stop as uvicorn does, and end the streams (on the loop, where they live)."""
        state = getattr(self._app.state, "volfefe", None)
        if state is not None:
            # No loop running here means nothing is streaming either.
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_soon_threadsafe(state.hub.end_streams)
        super().handle_exit(sig, frame)


def run(
    settings: Settings,
    database_url: str,
    classifier: Classifier,
    ready: Ready,
    host: str,
    port: int,
    verbose: int = 0,
) -> None:
    """Serve with `classifier` (started: `ready` is its first ready line) until SIGTERM or
    Ctrl-C; the app closes the classifier when it shuts down."""
    app = create_app(settings, database_url, classifier, ready)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=logging.DEBUG if verbose > 1 else logging.INFO,
        access_log=verbose > 0,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace)),
        server_header=False,
        http=with_header_deadline(settings.http_header_timeout),
        timeout_keep_alive=settings.http_keep_alive,
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
        limit_concurrency=settings.http_max_connections,
    )
    # uvicorn re-raises the stop signal once it has shut down; a SIGTERM then lands here and
    # the command ends normally (exit 0, after stopping its job worker), a Ctrl-C becomes
    # KeyboardInterrupt (exit 130).
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        Server(config, app).run()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stopped(sig: int, frame: FrameType | None) -> None:
    logger.info("stopped by signal %d", sig)
