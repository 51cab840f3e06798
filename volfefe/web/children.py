"""What the dashboard shows about each child process: pid, uptime and resident memory,
read from /proc (Linux); elsewhere uptime and memory are unknown (None)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def describe(pids: list[int]) -> list[dict[str, Any]]:
    """One `{"pid", "uptime_s", "rss_bytes"}` per pid, in the order given."""
    return [{"pid": pid, "uptime_s": uptime(pid), "rss_bytes": rss(pid)} for pid in pids]


def uptime(pid: int) -> float | None:
    """Seconds since the process started, or None when /proc cannot say."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        since_boot = float((PROC / "uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may contain spaces
    ticks = os.sysconf("SC_CLK_TCK")
    return max(0.0, since_boot - int(fields[19]) / ticks)


def rss(pid: int) -> int | None:
    """Resident memory in bytes, or None when /proc cannot say."""
    try:
        pages = int((PROC / str(pid) / "statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")
