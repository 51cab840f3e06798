"""How a long command shows progress on stderr: stages first, then posts.

```
starting 1 child for tiny-model (first use of onnx exports the model) ... 3.1 s
classifying ━━━━━━━━━━━╸━━━━━━  96/163  21.4 posts/s  0:00:04  ETA 0:00:03  0 failed
```
On a terminal it is a rich display (a spinner per stage, then a bar); otherwise, or with -v,
one line per stage and per post; with -q, nothing. The rate is measured over the last
`RATE_WINDOW` seconds up to the moment it is drawn, so it and the ETA keep moving between
batches instead of showing the first batch's burst.
"""

from __future__ import annotations

import time
from collections import deque
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from volfefe.classify.intelligence import Outcome
from volfefe.cli.terminal import for_terminal
from volfefe.errors import AlreadyClassified
from volfefe.result import Classification

RATE_WINDOW = 10.0  # seconds of history behind the rate shown
MIN_SPAN = 1.0  # seconds: no rate is shown before posts have flowed this long


class SlidingRate:
    """Posts per second over the last `window` seconds, measured up to `now`.

    >>> r = SlidingRate(window=10.0)
    >>> r.add(0.0, 0); r.add(2.0, 40); r.per_second(4.0)
    10.0
    """

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self._window = window
        self._marks: deque[tuple[float, int]] = deque()

    def add(self, at: float, done: int) -> None:
        """Record that `done` posts were finished at time `at` (monotonic seconds)."""
        self._marks.append((at, done))
        while len(self._marks) > 2 and at - self._marks[1][0] >= self._window:
            self._marks.popleft()

    def per_second(self, now: float) -> float | None:
        """The rate from the oldest mark in the window to `now`, or None when too early."""
        if len(self._marks) < 2:
            return None
        (first_at, first_done), (_, last_done) = self._marks[0], self._marks[-1]
        span = now - first_at
        return (last_done - first_done) / span if span >= MIN_SPAN else None

    def eta(self, now: float, remaining: int) -> float | None:
        """Seconds left for `remaining` posts at the window's rate, counting down from the
        last finished post (so it moves while a batch computes), or None when too early.

        >>> r = SlidingRate(window=10.0)
        >>> r.add(0.0, 0); r.add(2.0, 40); r.eta(3.0, 100)
        4.0
        """
        if len(self._marks) < 2:
            return None
        (first_at, first_done), (last_at, last_done) = self._marks[0], self._marks[-1]
        if last_done == first_done or now - first_at < MIN_SPAN:
            return None
        rate = (last_done - first_done) / (last_at - first_at or 1e-9)
        return max(0.0, remaining / rate - (now - last_at))


def is_failure(outcome: Outcome | None) -> bool:
    """A post that failed (skipped posts, None or already classified, are not failures)."""
    return not (outcome is None or isinstance(outcome, Classification | AlreadyClassified))


class QuietReporter:
    """Shows nothing (`-q`)."""

    def stage(self, what: str) -> None:
        """Nothing."""

    def start(self, total: int) -> None:
        """Nothing."""

    def post(self, content_id: int, outcome: Outcome | None, ms: float) -> None:
        """Nothing."""

    def stop(self) -> None:
        """Nothing."""


class LineReporter:
    """`[i/N] content_id=12 positive (0.95) 120 ms`, one line per post; one per stage."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._done = 0
        self._total = 0
        self._stage: tuple[str, float] | None = None

    def stage(self, what: str) -> None:
        """Say what is being done before posts flow (`starting ...`)."""
        self._end_stage()
        self._stage = (what, time.monotonic())
        print(f"{what} ...", file=self._stream, flush=True)

    def start(self, total: int) -> None:
        """Remember the total for the `[i/N]` prefix."""
        self._end_stage()
        self._total = total

    def post(self, content_id: int, outcome: Outcome | None, ms: float) -> None:
        """Print one line for one post."""
        self._done += 1
        prefix = f"[{self._done}/{self._total}] content_id={content_id}"
        if isinstance(outcome, Classification):
            line = f"{prefix} {outcome.sentiment} ({outcome.confidence:.2f}) {ms:.0f} ms"
        elif outcome is None:
            line = f"{prefix} skipped: another volfefe process is classifying it"
        elif isinstance(outcome, AlreadyClassified):
            line = f"{prefix} skipped: already classified"
        else:
            line = f"{prefix} failed: {type(outcome).__name__}: {outcome}"
        line = for_terminal(line, keep_newlines=False)
        print(line, file=self._stream, flush=True)

    def stop(self) -> None:
        """Close a stage left open."""
        self._end_stage()

    def _end_stage(self) -> None:
        if self._stage is not None:
            what, since = self._stage
            print(f"{what}: done in {time.monotonic() - since:.1f} s", file=self._stream)
            self._stage = None


class _RateColumn(ProgressColumn):
    """`21.4 posts/s` from the sliding window, recomputed at every refresh."""

    def __init__(self, rate: SlidingRate) -> None:
        super().__init__()
        self._rate = rate

    def render(self, task: Any) -> Text:
        rate = self._rate.per_second(time.monotonic())
        return Text(f"{rate:.1f} posts/s" if rate else "- posts/s")


class _EtaColumn(ProgressColumn):
    """`ETA 0:01:05` from the sliding-window rate; it counts down between batches."""

    def __init__(self, rate: SlidingRate) -> None:
        super().__init__()
        self._rate = rate

    def render(self, task: Any) -> Text:
        if task.total is None:
            return Text("ETA -:--:--")
        eta = self._rate.eta(time.monotonic(), int(task.total - task.completed))
        if eta is None:
            return Text("ETA -:--:--")
        left = round(eta)
        return Text(f"ETA {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}")


class BarReporter:
    """A spinner per stage, then a bar with count, sliding rate, elapsed time and ETA."""

    def __init__(self, console: Console) -> None:
        self._rate = SlidingRate()
        self._progress = Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(self._rate),
            TimeElapsedColumn(),
            _EtaColumn(self._rate),
            TextColumn("[red]{task.fields[failed]} failed"),
            console=console,
            refresh_per_second=4,
        )
        self._stages = Progress(
            SpinnerColumn(finished_text="✓"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._stage: TaskID | None = None
        self._task: TaskID | None = None
        self._failed = 0
        self._done = 0

    def stage(self, what: str) -> None:
        """Show a spinner with `what` and the time it has taken so far."""
        self._end_stage()
        if self._stage is None and not self._stages.live.is_started:
            self._stages.start()
        self._stage = self._stages.add_task(what, total=1)

    def start(self, total: int) -> None:
        """End the stages and show the bar."""
        self._end_stage()
        self._stages.stop()
        self._progress.start()
        self._task = self._progress.add_task("classifying", total=total, failed=0)
        self._rate.add(time.monotonic(), 0)

    def post(self, content_id: int, outcome: Outcome | None, ms: float) -> None:
        """Advance by one post."""
        assert self._task is not None
        self._done += 1
        self._failed += is_failure(outcome)
        self._rate.add(time.monotonic(), self._done)
        self._progress.update(self._task, advance=1, failed=self._failed)

    def stop(self) -> None:
        """Remove the live display."""
        self._end_stage()
        self._stages.stop()
        self._progress.stop()

    def _end_stage(self) -> None:
        if self._stage is not None:
            self._stages.update(self._stage, completed=1)
            self._stage = None


def make_reporter(
    console_stream: IO[str], *, verbose: bool, quiet: bool
) -> QuietReporter | LineReporter | BarReporter:
    """The right display for this run: nothing (-q), a bar on a terminal, else lines."""
    if quiet:
        return QuietReporter()
    if console_stream.isatty() and not verbose:
        return BarReporter(Console(file=console_stream))
    return LineReporter(console_stream)
