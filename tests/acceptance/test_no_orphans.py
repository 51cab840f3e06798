"""No child outlives the orchestrator, even when it is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import alive, eventually

HOST = textwrap.dedent("""
    import json, sys, time
    from volfefe import Classifier, Settings
    model, mode = sys.argv[1], sys.argv[2]
    env = {"HF_HUB_OFFLINE": "1"}
    if mode == "busy":
        env["VOLFEFE_WORKER_FAULT"] = "hang@1"
    clf = Classifier(Settings(model=model, workers=2, threads=1, boot_timeout=60,
                              call_timeout=600, worker_env=env))
    clf.start()
    while len(clf.pids()) < 2:
        time.sleep(0.05)
    print(json.dumps(clf.pids()), flush=True)
    if mode == "busy":
        clf.classify_many(["stocks"] * 2, return_exceptions=True)  # both children hang
    sys.stdin.read()
""")


@pytest.mark.parametrize("mode", ["idle", "busy"])
def test_children_die_with_a_killed_orchestrator(tiny_model: Path, mode: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOST, str(tiny_model), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as host:
        try:
            assert host.stdout is not None
            pids = json.loads(host.stdout.readline())
            assert len(pids) == 2 and all(alive(pid) for pid in pids)
            os.kill(host.pid, signal.SIGKILL)
            host.wait(timeout=30)
            eventually(lambda: not any(alive(pid) for pid in pids), timeout=30)
        finally:
            if host.poll() is None:
                host.kill()
