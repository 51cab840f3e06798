"""Progress on stderr, prefixed with the suite's name, so stdout holds the report only."""

from __future__ import annotations

import logging
import sys

LOGGER = logging.getLogger("benches")


def setup(suite: str) -> None:
    """Send the benches' progress to stderr as `[bench SUITE] message`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"[bench {suite}] %(message)s"))
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False


def log(message: str) -> None:
    """One line of progress."""
    LOGGER.info(message)
