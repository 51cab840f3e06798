"""What `classify` shows while it works: on a terminal (a pseudo-terminal here), in a pipe,
and with -q. The display goes to stderr; stdout keeps the summary only."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.acceptance.test_cli_classify import SAMPLE, Volfefe

DEADLINE = 180.0
RATE = re.compile(r"(\d+\.\d) posts/s")


def run_on_terminal(volfefe: Volfefe, *args: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal; (exit code, stdout, terminal output)."""
    leader, follower = pty.openpty()
    # Each reply of a child takes 0.25 s more, so posts flow for a few seconds.
    env = {**volfefe.env(fault="delay=0.25", batch_size=8), "COLUMNS": "160", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "volfefe", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    seen = bytearray()
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's last writer is gone
            break
        if not chunk:
            break
        seen.extend(chunk)
    os.close(leader)
    out, _ = proc.communicate(timeout=DEADLINE)
    return proc.returncode, out, seen.decode("utf-8", "replace")


def test_terminal_shows_the_boot_stage_then_a_bar_with_a_sane_rate(volfefe: Volfefe) -> None:
    volfefe.import_file(SAMPLE)
    code, out, screen = run_on_terminal(volfefe, "classify", "--limit", "60")
    assert code == 0, screen
    assert out.startswith("Done: 60 posts, 60 succeeded")  # the summary stays on stdout
    assert "starting 1 child for " in screen  # from the first second, before any post
    assert "classifying" in screen and "60/60" in screen
    assert "ETA" in screen
    rates = [float(r) for r in RATE.findall(screen)]
    assert rates, screen
    # A rate over a window of at least a second can never exceed the posts done (60) per second;
    # the old display showed the first batch's burst (1e5 posts/s).
    assert max(rates) <= 60.0, rates


def test_pipe_shows_a_line_per_stage_and_post_and_quiet_shows_nothing(
    volfefe: Volfefe, tmp_path: Path
) -> None:
    volfefe.import_posts(
        tmp_path,
        [{"source": "t", "external_id": f"p{i}", "text": f"stocks rally {i}"} for i in range(4)],
    )
    lines = volfefe.run("classify", "--limit", "2")
    assert lines.returncode == 0, lines.stderr
    err = lines.stderr.splitlines()
    assert err[0].startswith("starting 1 child for ") and err[0].endswith(" ...")
    assert re.fullmatch(r"starting 1 child for .*: done in \d+\.\d s", err[1])
    assert len(err) == 4 and err[2].startswith("[1/2] ") and err[3].startswith("[2/2] ")

    quiet = volfefe.run("-q", "classify", "--json")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert json.loads(quiet.stdout)["succeeded"] == 2
