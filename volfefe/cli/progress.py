"""How a classify run shows progress: a rich bar on a terminal, one line per post otherwise."""

from __future__ import annotations

from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from volfefe.cli.terminal import for_terminal
from volfefe.result import Classification
from volfefe.store.intelligence import Outcome


class LineReporter:
    """`[i/N] content_id=12 positive (0.95) 120 ms`, one line per post."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._done = 0
        self._total = 0

    def start(self, total: int) -> None:
        """Remember the total for the `[i/N]` prefix."""
        self._total = total

    def post(self, content_id: int, outcome: Outcome | None, ms: float) -> None:
        """Print one line for one post."""
        self._done += 1
        prefix = f"[{self._done}/{self._total}] content_id={content_id}"
        if isinstance(outcome, Classification):
            line = f"{prefix} {outcome.sentiment} ({outcome.confidence:.2f}) {ms:.0f} ms"
        elif outcome is None:
            line = f"{prefix} skipped: another volfefe process is classifying it"
        else:
            line = f"{prefix} failed: {type(outcome).__name__}: {outcome}"
        line = for_terminal(line, keep_newlines=False)
        print(line, file=self._stream, flush=True)

    def stop(self) -> None:
        """Nothing to tidy up."""


class BarReporter:
    """A progress bar with count, rate and ETA (rich, on stderr)."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("classifying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} posts/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            console=console,
        )
        self._task: TaskID | None = None
        self._failed = 0

    def start(self, total: int) -> None:
        """Show the bar."""
        self._progress.start()
        self._task = self._progress.add_task("classify", total=total, rate="-", failed=0)

    def post(self, content_id: int, outcome: Outcome | None, ms: float) -> None:
        """Advance by one post."""
        assert self._task is not None
        if outcome is not None and not isinstance(outcome, Classification):
            self._failed += 1
        self._progress.advance(self._task)
        task = self._progress.tasks[0]
        rate = f"{task.speed:.1f}" if task.speed else "-"
        self._progress.update(self._task, rate=rate, failed=self._failed)

    def stop(self) -> None:
        """Remove the live display."""
        self._progress.stop()
