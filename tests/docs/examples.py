"""The docs' examples, read from the Markdown and run as a reader would run them.

```
README.md, docs/*.md ──parse──> Example(page, line, kind, body, skip reason)
                                   │
          console: each `$ command` runs in bash; its output (stdout and stderr, merged)
                   must match the lines below it; it must exit 0
          python:  the block runs as a script (`python -c`); it must exit 0
```

What a page may write:

- A fenced block in `console`, `python`, `sh`, `bash` or `shell` is an example. `sh`, `bash`
  and `shell` blocks are never run, so each needs the marker below (write `console` to run).
- `<!-- not executed: REASON -->` on the line before a block: the block is not run (FinBERT
  from the hub, systemd, nginx, a benchmark); the reason is visible in the Markdown source.
- In a console block, `$ ` starts a command; a line ending in `\\` continues it. The lines
  after it, up to the next command, are its output. `…` stands for any text within a line; a
  line that is only `…` stands for any number of lines. A command that shows a failure ends
  in `; echo "exit $?"`, so that it exits 0 and its status is part of the output.
- Log records (`2026-12-06 10:00:00,000 WARNING name: message`, with their tab-indented
  continuation lines) are left out of the output before it is compared: they come and go
  with timing (a reconnect, say), and no example shows one.
- A command ending in `&` runs in the background until the page ends (SIGTERM then). When
  it is `serve`, the runner waits until `/readyz` answers 200.
- The documented address `localhost:8000` is the reader's; the runner serves on a free port
  and replaces `localhost:8000` by it in every command, and adds `--port` to `serve`.

The commands of one page share one shell state (exported variables, working directory) and
run in a scratch folder where `data/`, `scripts/` and `worker/` are the checkout's.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.helpers import eventually

ROOT = Path(__file__).resolve().parents[2]
RUN = ("console", "python")
NEVER_RUN = ("sh", "bash", "shell")
NOT_EXECUTED = re.compile(r"^\s*<!--\s*not executed:\s*(?P<reason>.+?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")
COMMAND_TIMEOUT = 240.0
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Example:
    """One fenced block of a page: its kind, its text and why it is not run (if it is not)."""

    page: Path
    line: int  # of the opening fence, 1-based
    kind: str
    body: str
    skip: str | None = None

    @property
    def where(self) -> str:
        """`docs/page.md:12`, for messages."""
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """The Markdown a reader meets: the README and every page of the docs site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def parse(page: Path) -> list[Example]:
    """Every example block of `page`, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened or not opened["lang"]:
            i += 1
            continue
        indent, lang, start = opened["indent"], opened["lang"], i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        if lang in RUN or lang in NEVER_RUN:
            before = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
            marker = NOT_EXECUTED.match(before)
            found.append(
                Example(
                    page, start + 1, lang, "\n".join(body), marker["reason"] if marker else None
                )
            )
    return found


@dataclass
class Command:
    """One `$ ` command of a console block and the output it must print."""

    line: int
    text: str
    expected: list[str] = field(default_factory=list)


def commands(example: Example) -> list[Command]:
    """The commands of a console block with their expected output lines."""
    found: list[Command] = []
    continuing = False
    for offset, raw in enumerate(example.body.splitlines(), start=1):
        if continuing:
            found[-1].text += "\n" + raw
        elif raw.startswith("$ "):
            found.append(Command(example.line + offset, raw[2:]))
        elif found:
            found[-1].expected.append(raw)
        else:
            raise AssertionError(f"{example.where}: output before any `$ ` command: {raw!r}")
        continuing = raw.endswith("\\")
    return found


def pattern(expected: list[str]) -> re.Pattern[str]:
    """The expected lines as a regular expression: `…` is any text in a line; a line of
    only `…` is any number of lines."""
    parts = []
    for line in expected:
        if line.strip() == "…":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            pieces = [re.escape(piece) for piece in line.rstrip().split("…")]
            parts.append("[^\n]*?".join(pieces) + r"[ \t]*\n")
    return re.compile("".join(parts))


LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+: ")


def without_log_records(output: str) -> list[str]:
    """The lines of `output` less log records and their tab-indented continuations."""
    kept: list[str] = []
    in_record = False
    for line in output.rstrip("\n").splitlines():
        in_record = bool(LOG_RECORD.match(line)) or (in_record and line.startswith("\t"))
        if not in_record:
            kept.append(line)
    return kept


def matches(expected: list[str], output: str) -> bool:
    """Whether `output` is what the example shows (trailing blank lines and log records
    aside)."""
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    text = "".join(line.rstrip() + "\n" for line in without_log_records(output))
    if not expected:
        return True  # a command shown without its output: only its exit status counts
    return pattern(expected).fullmatch(text) is not None


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Reader:
    """A reader's shell for one page: an environment, a scratch folder, background jobs."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="volfefe-docs-"))
        for name in ("data", "scripts", "worker"):
            (self.folder / name).symlink_to(ROOT / name)
        self.env = dict(env)
        self.cwd = self.folder
        self.port = free_port()
        self.background: list[tuple[subprocess.Popen[bytes], Path]] = []

    def _script(self, text: str, state: Path) -> str:
        text = text.replace("localhost:8000", f"127.0.0.1:{self.port}")
        if re.search(r"\bvolfefe\b.*\bserve\b", text) and "--port" not in text:
            text = text.replace(" serve", f" serve --port {self.port}", 1)
        # The command, then the shell's state for the next command.
        return f"{text}\nstatus=$?\nenv -0 > {state}/env\npwd > {state}/cwd\nexit $status\n"

    def run(self, command: Command, where: str) -> str:
        """Run one command as the page shows it; its merged output (fails on a non-zero exit)."""
        text = command.text.rstrip()
        if text.endswith("&"):
            self._start(text[:-1].rstrip(), where)
            return ""
        with tempfile.TemporaryDirectory() as state:
            done = subprocess.run(
                ["bash", "-c", self._script(text, Path(state))],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
            output = done.stdout.decode(errors="replace")
            if done.returncode != 0:
                raise AssertionError(f"{where}: `{text}` exited {done.returncode}:\n{output}")
            pairs = Path(state, "env").read_bytes().split(b"\0")
            self.env = dict(p.decode().split("=", 1) for p in pairs if b"=" in p)
            self.cwd = Path(Path(state, "cwd").read_text().strip())
        return output

    def _start(self, text: str, where: str) -> None:
        log = self.folder / f"background-{len(self.background) + 1}.log"
        with log.open("wb") as out, tempfile.TemporaryDirectory() as state:
            proc = subprocess.Popen(
                ["bash", "-c", "exec " + self._script(text, Path(state)).split("\nstatus=")[0]],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background.append((proc, log))
        if re.search(r"\bserve\b", text):
            self._wait_ready(proc, log, where)

    def _wait_ready(self, proc: subprocess.Popen[bytes], log: Path, where: str) -> None:
        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{where}: serve exited {proc.returncode}:\n{log.read_text()}")
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=5).is_success
            except httpx.TransportError:
                return False

        try:
            eventually(ready, timeout=READY_TIMEOUT, interval=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}:\n{log.read_text()}") from None

    def close(self) -> list[str]:
        """Stop the background commands (SIGTERM, then SIGKILL); their logs."""
        logs = []
        for proc, log in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=STOP_TIMEOUT)
            logs.append(log.read_text(errors="replace"))
        return logs


def run_example(reader: Reader, example: Example) -> None:
    """Run one example in the reader's shell; fail with what differs."""
    if example.kind == "python":
        done = subprocess.run(
            [sys.executable, "-c", example.body],
            cwd=reader.cwd,
            env=reader.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, f"{example.where}: exited {done.returncode}:\n" + (
            done.stdout + done.stderr
        ).decode(errors="replace")
        return
    for command in commands(example):
        where = f"{example.page.relative_to(ROOT)}:{command.line}"
        output = reader.run(command, where)
        if not matches(command.expected, output):
            shown = "\n".join(command.expected)
            raise AssertionError(
                f"{where}: `{command.text}` printed\n{output}\n--- the page shows ---\n{shown}"
            )


def runnable(page: Path) -> Iterator[Example]:
    """The examples of `page` that run."""
    return (e for e in parse(page) if e.skip is None and e.kind in RUN)
