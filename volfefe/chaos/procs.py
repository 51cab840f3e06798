"""Processes seen from /proc: who is whose child, which are volfefe children, orphans.

The harness makes itself a *child subreaper* (Linux `PR_SET_CHILD_SUBREAPER`): a process
whose parent dies is re-parented to the harness instead of init, so an orphaned volfefe
child is simply one of the harness's own children that the harness did not start.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
CHILD_ARG = b"volfefe.child"  # `python -m volfefe.child`; not volfefe.child.export
PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class Proc:
    """One process: pid, parent pid, state letter (R, S, T, Z...), command line, age."""

    pid: int
    ppid: int
    state: str
    cmdline: bytes
    age_s: float

    @property
    def is_volfefe_child(self) -> bool:
        """True for a live (not zombie) `python -m volfefe.child` process."""
        return CHILD_ARG in self.cmdline.split(b"\0") and self.state not in ("Z", "X")


def become_subreaper() -> None:
    """Adopt orphaned descendants (Linux only; elsewhere orphans go to init, unseen)."""
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def snapshot() -> dict[int, Proc]:
    """Every process readable in /proc right now, by pid."""
    ticks = os.sysconf("SC_CLK_TCK")
    uptime = float((PROC / "uptime").read_text().split()[0])
    procs: dict[int, Proc] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # it exited while we looked
            continue
        fields = stat.rsplit(")", 1)[1].split()
        started = int(fields[19]) / ticks
        pid = int(entry.name)
        procs[pid] = Proc(pid, int(fields[1]), fields[0], cmdline, uptime - started)
    return procs


def descendants(procs: dict[int, Proc], root: int) -> list[Proc]:
    """Every process below `root` in the tree (not `root` itself)."""
    children: dict[int, list[Proc]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc)
    found: list[Proc] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def signal_quietly(pid: int, sig: signal.Signals) -> bool:
    """Send `sig`; False when the process is gone already."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def catches(pid: int, sig: signal.Signals) -> bool:
    """Whether `pid` has a handler for `sig` now (the SigCgt mask of /proc/PID/status), so
    sending it cannot kill a process that is still starting up."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def reap_zombie_children(known: set[int]) -> None:
    """Reap dead processes re-parented to us (we are a subreaper), except those in `known`
    (a Popen or an asyncio child watcher waits for them)."""
    me = os.getpid()
    for proc in snapshot().values():
        if proc.ppid == me and proc.state == "Z" and proc.pid not in known:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, os.WNOHANG)
