"""Paths of the checkout and the subprocess helpers every suite uses: run a command, run
`python -m volfefe`, read one line with a deadline, stop a process, a process's peak RSS."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
WORKER = ROOT / "worker" / "classify.py"
SAMPLE_POSTS = ROOT / "data" / "sample_posts.jsonl"
STOP_WAIT = 30.0  # seconds a stopped process gets before SIGKILL


def tail(text: str | bytes, lines: int = 15) -> str:
    """The last lines of a process's output, for error messages.

    >>> tail("a\\nb\\nc\\n", 2)
    'b\\nc'
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.strip().splitlines()[-lines:])


def run(argv: Sequence[str], *, env: Mapping[str, str], timeout: float, stdin: bytes = b"") -> str:
    """Run a command (argument list, no shell); its stdout, or RuntimeError with stderr's tail."""
    proc = subprocess.run(
        list(argv), input=stdin, capture_output=True, env=dict(env), cwd=ROOT, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[1:4])}... exited {proc.returncode}:\n{tail(proc.stderr)}"
            f"\n{tail(proc.stdout, 5)}"
        )
    return proc.stdout.decode("utf-8", "replace")


def volfefe(args: Sequence[str], env: Mapping[str, str], timeout: float) -> str:
    """`python -m volfefe ARGS` as a subprocess; its stdout."""
    return run([sys.executable, "-m", "volfefe", *args], env=env, timeout=timeout)


def read_line(stream: IO[bytes], deadline: float) -> bytes:
    """One line from an unbuffered pipe, waiting until `deadline` (monotonic) at most."""
    fd = stream.fileno()
    buf = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line before the deadline")
            if not selector.select(left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
    return bytes(buf).split(b"\n", 1)[0]


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait: float = STOP_WAIT
) -> int | None:
    """Send `sig`, wait up to `wait` seconds, then SIGKILL; the exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout=wait)


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set size of a process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")
