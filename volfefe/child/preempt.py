"""Serve with preemption between layers (VOLFEFE_PREEMPT=layers): a short request waiting
behind a long one is answered between two stages of the long one's forward pass.

```
stdin ──reader thread──> queue of line chunks ──> pending (FIFO) ──> compute loop
                                                                        │ runs the oldest
        stages of its pass: embeddings │ layer 0 │ layer 1 │ ... │ head
                                       ▲ between two stages (a pause): every pending
                                         request shorter than it, whole and together (one
                                         engine call), replies written at once, then
                                         those that came meanwhile, and so on
```

A reply carries its request's id, so replies may leave in another order than requests came;
a request run between stages is not itself preempted (no nesting). "Shorter" is measured in
characters (each text cut to max_chars), which the tokenizer turns into tokens roughly in
proportion; a ping (no texts) and a line that is not a request are shortest of all. A pause
ends when no shorter request waits or once it has lasted `PAUSE_LIMIT`, so a long request
moves on by at least one stage per `PAUSE_LIMIT` even under a flood of short ones. The
reader thread queues every complete line of one read together: lines written in one write
are seen together.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import IO

from volfefe.child.answer import answer_together, read_line
from volfefe.child.backends.layered_backend import StagedPredict, no_pause
from volfefe.child.engine import Engine
from volfefe.child.faults import Fault
from volfefe.protocol import Reply, Request, encode

READ_CHUNK = 1 << 16
# Seconds one pause may run shorter requests (checked between requests). At 90 % load the
# short posts need most of the child: at 50 ms, those still waiting when a pause ended
# waited a stage more (docs/deploying.md, comparison pause-limit-2026-12-06).
PAUSE_LIMIT = 0.15


@dataclass(frozen=True, slots=True)
class Pending:
    """A read line: the request (or the reply to a bad line) and its size in characters."""

    read: Request | Reply
    size: int


_EOF = Pending(Reply(None), -1)


class Scheduler:
    """The compute loop of a preempting child (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        staged: StagedPredict,
        proto_in: IO[bytes],
        proto_out: IO[bytes],
        fault: Fault | None,
    ) -> None:
        self._engine = engine
        self._staged = staged
        self._in = proto_in
        self._out = proto_out
        self._fault = fault
        self._chunks: queue.SimpleQueue[list[Pending]] = queue.SimpleQueue()
        self._pending: deque[Pending] = deque()
        self._running: Pending | None = None

    def serve(self) -> None:
        """Answer requests until EOF on stdin (the ready line first)."""
        self._out.write(encode(self._engine.ready))
        self._out.flush()
        threading.Thread(target=self._read, name="volfefe-stdin", daemon=True).start()
        while (item := self._next()) is not _EOF:
            self._running = item
            self._staged.between = self._between
            try:
                self._run_together([item])
            finally:
                self._running = None
                self._staged.between = no_pause
        if self._fault is not None:
            self._fault.on_eof()

    def _between(self) -> None:
        """The pause point: run the waiting requests shorter than the paused one, and those
        that arrive meanwhile, until none waits or the pause has lasted PAUSE_LIMIT."""
        running = self._running
        if running is None:
            return
        ends = time.monotonic() + PAUSE_LIMIT
        self._staged.between = no_pause  # what runs here is not preempted in turn
        try:
            while time.monotonic() < ends:
                self._collect()
                shorter = [p for p in self._pending if p is not _EOF and p.size < running.size]
                if not shorter:
                    return
                for item in shorter:
                    self._pending.remove(item)
                self._run_together(shorter)
        finally:
            self._staged.between = self._between

    def _run_together(self, items: list[Pending]) -> None:
        """Answer `items` with one engine call; the replies leave in the items' order."""
        requests = [item.read for item in items if isinstance(item.read, Request)]
        answered = iter(answer_together(self._engine, requests, self._out, self._fault))
        for item in items:
            reply = next(answered) if isinstance(item.read, Request) else item.read
            self._out.write(encode(reply))
        self._out.flush()

    def _next(self) -> Pending:
        if not self._pending:
            self._pending.extend(self._chunks.get())
        return self._pending.popleft()

    def _collect(self) -> None:
        """Move what the reader has queued to `pending`, without waiting."""
        while True:
            try:
                self._pending.extend(self._chunks.get_nowait())
            except queue.Empty:
                return

    def _read(self) -> None:
        """The reader thread: split stdin into lines; every line of one read in one chunk."""
        rest = b""
        try:
            fd = self._in.fileno()
            while chunk := os.read(fd, READ_CHUNK):
                *lines, rest = (rest + chunk).split(b"\n")
                if lines:
                    self._chunks.put([self._pending_of(line) for line in lines])
        finally:  # a failed read ends the child like EOF, never leaves it waiting
            last = [self._pending_of(rest)] if rest.strip() else []
            self._chunks.put([*last, _EOF])

    def _pending_of(self, line: bytes) -> Pending:
        read = read_line(line)
        if isinstance(read, Reply):
            return Pending(read, 0)
        return Pending(read, sum(min(len(t), self._engine.max_chars) for t in read.texts))
