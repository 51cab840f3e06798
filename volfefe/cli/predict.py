"""`volfefe predict`: classify texts given on the command line or stdin; no database.

`predict -` streams: a reader thread hands each stdin line over as it arrives, every line
already waiting goes to the pool as one batch, and answers are printed (and flushed) in
input order as soon as they exist, so `tail -f feed | volfefe predict -` answers each post
while the feed is still open.

```
stdin ──reader thread──> events ──main loop: take every waiting line──> submit_many (≤ in flight)
                            ^                                                   │
                            └──────────── "a batch finished" callback ──────────┘
main loop: print finished batches from the front, in input order
```
"""

from __future__ import annotations

import concurrent.futures
import queue
import sys
import threading
from collections import deque
from collections.abc import Sequence
from typing import IO

import click

from volfefe.cli.common import echo_json, with_model
from volfefe.config import Settings
from volfefe.errors import ClassifierError
from volfefe.result import Classification
from volfefe.supervisor.classifier import Classifier

MAX_BATCH = 256  # lines per call at most, however many are waiting
_EOF = None

Results = list[Classification | ClassifierError]
Event = str | concurrent.futures.Future[Results] | None  # a line, a finished batch, EOF


@click.command("predict")
@click.argument("texts", nargs=-1, required=True)
@click.pass_obj
def predict_command(settings: Settings, texts: tuple[str, ...]) -> None:
    """Classify TEXTS (or one text per stdin line with `-`) and print JSON lines.

    With `-`, each line is answered as soon as it is classified (lines that arrive together
    are batched), so a never-ending feed works. No database is needed. Exit status 1 when
    any text failed (its line holds the error).
    """
    settings = with_model(settings)
    with Classifier(settings) as clf:
        if texts == ("-",):
            failed = stream_lines(clf, sys.stdin.buffer, in_flight=settings.workers + 1)
        else:
            failed = _print(clf.classify_many(list(texts), return_exceptions=True))
    if failed:
        sys.exit(1)


def stream_lines(clf: Classifier, stream: IO[bytes], *, in_flight: int) -> bool:
    """Answer each line of `stream` in order as soon as it is classified; True if any failed."""
    events: queue.SimpleQueue[Event] = queue.SimpleQueue()
    threading.Thread(target=_read_lines, args=(stream, events), daemon=True).start()
    waiting: list[str] = []
    pending: deque[concurrent.futures.Future[Results]] = deque()
    failed = at_eof = False
    while not (at_eof and not waiting and not pending):
        event = events.get()
        while True:  # take everything that is already there, not just one event
            if isinstance(event, str):
                waiting.append(event)
            elif event is _EOF:
                at_eof = True
            try:
                event = events.get_nowait()
            except queue.Empty:
                break
        while waiting and len(pending) < in_flight:
            batch, waiting = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
            future = clf.submit_many(batch)
            future.add_done_callback(events.put)  # wakes the loop when it is done
            pending.append(future)
        while pending and pending[0].done():
            failed |= _print(pending.popleft().result())
    return failed


def _read_lines(stream: IO[bytes], events: queue.SimpleQueue[Event]) -> None:
    """Put each line (invalid UTF-8 becomes U+FFFD) on `events` as it arrives, then EOF."""
    try:
        for raw in iter(stream.readline, b""):
            events.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
    finally:
        events.put(_EOF)


def _print(results: Sequence[Classification | ClassifierError]) -> bool:
    """One JSON line per result (flushed); True if any is an error."""
    failed = False
    for result in results:
        if isinstance(result, ClassifierError):
            failed = True
            echo_json({"error": {"type": type(result).__name__, "message": str(result)}})
        else:
            echo_json(result.to_dict())
    return failed
