"""A job worker on a host of its own, cut off from PostgreSQL by dropped packets.

The first test checks the mechanism: a query from inside the namespace over a cut link fails
within the bound of the connection's keepalive settings (not the many minutes of TCP's
retransmissions), and the link carries new connections again after the heal. The second runs
`python -m volfefe chaos --faults partition-worker` with one 20 s partition mid-backlog.
Both need root and `ip` (iproute2); elsewhere they skip, saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from volfefe.chaos.netns import Netns, unavailable
from volfefe.chaos.partition import SLACK, keepalive_idle
from volfefe.config import Settings
from volfefe.store.connect import with_limits

KEEPALIVE = 2.0  # seconds: VOLFEFE_DB_KEEPALIVE of the probe; a cut link fails in 2 x this
RUN_TIMEOUT = 280.0  # seconds; the run takes about 70 s
POSTS = 400  # with one reply per 0.3 s and batches of one, the backlog outlasts the cut

# Inside the namespace: connect, then on each line of stdin run one query and say how it went.
PROBE = """
import sys, time
import psycopg
from volfefe.store.connect import connect
conn = connect(sys.argv[1])
print("ready", flush=True)
for line in sys.stdin:
    started = time.monotonic()
    try:
        if line.strip() == "new":
            conn = connect(sys.argv[1])
        conn.execute("SELECT 1").fetchone()
        print("ok", round(time.monotonic() - started, 2), flush=True)
    except (psycopg.Error, Exception) as exc:
        print(type(exc).__name__, round(time.monotonic() - started, 2), flush=True)
"""


@pytest.fixture
def netns_or_skip() -> None:
    """Skip, saying why, on a machine that cannot make network namespaces."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)


def _ours() -> set[str]:
    """The names of the links and namespaces with the harness's `vf` prefix."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    spaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    names = [line.split(":")[1].strip().split("@")[0] for line in links.stdout.splitlines()]
    names += [line.split()[0] for line in spaces.stdout.splitlines() if line.strip()]
    return {name for name in names if name.startswith("vf")}


@pytest.mark.db
@pytest.mark.usefixtures("netns_or_skip")
def test_a_query_over_a_cut_link_fails_within_the_keepalive_bound(server_url: str) -> None:
    settings = Settings(db_keepalive=KEEPALIVE, db_connect_timeout=3.0)
    with Netns(server_url) as ns:
        url = with_limits(ns.url, settings)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        with subprocess.Popen(
            ns.command([sys.executable, "-c", PROBE, url]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        ) as probe:
            assert probe.stdin is not None and probe.stdout is not None
            assert probe.stdout.readline().strip() == "ready"

            def ask(line: str) -> tuple[str, float]:
                assert probe.stdin is not None and probe.stdout is not None
                probe.stdin.write(line + "\n")
                probe.stdin.flush()
                kind, seconds = probe.stdout.readline().split()
                return kind, float(seconds)

            assert ask("query")[0] == "ok"
            ns.cut()
            kind, seconds = ask("query")
            assert kind == "OperationalError"  # not a hang: the TCP user timeout fired
            assert seconds <= 2 * keepalive_idle(settings) + SLACK
            kind, _ = ask("new")
            assert kind == "DatabaseUnavailable"  # the connect timeout, no answer at all
            ns.heal()
            assert ask("new")[0] == "ok"
            probe.stdin.close()  # EOF: the probe ends (Popen's exit waits for it)
    assert not {ns.name, ns.host_if, ns.ns_if} & _ours()


@pytest.mark.slow
@pytest.mark.usefixtures("netns_or_skip")
def test_a_partitioned_worker_is_rescued_notices_and_rejoins(
    tiny_model: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VOLFEFE_MODEL": str(tiny_model),
        "VOLFEFE_BACKEND": "auto",
        "VOLFEFE_WORKERS": "1",
        "VOLFEFE_THREADS": "1",
        "VOLFEFE_BATCH_SIZE": "1",  # two jobs in flight per worker: the cut catches some
        "VOLFEFE_CALL_TIMEOUT": "5",
        "VOLFEFE_BOOT_TIMEOUT": "20",
        "VOLFEFE_SHUTDOWN_GRACE": "3",
    }
    report = tmp_path / "chaos.json"
    argv = [
        *(sys.executable, "-m", "volfefe", "chaos", "--seed", "1", "--posts", str(POSTS)),
        *("--poison", "0", "--minutes", "0.5", "--interval", "30", "--child-delay", "0.3"),
        *("--faults", "partition-worker", "--partition-seconds", "20", "--json", str(report)),
    ]
    started = time.monotonic()
    run = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = run.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        run.kill()
        run.communicate()
        raise
    done = subprocess.CompletedProcess(argv, run.returncode, stdout, stderr)
    assert report.exists(), done.stderr[-5000:]
    data = json.loads(report.read_text())
    assert data["violations"] == [], done.stdout
    assert done.returncode == 0, done.stderr[-5000:]
    assert data["faults"]["partition-worker"] == {"scheduled": 1, "injected": 1, "no_target": 0}
    out = data["outcomes"]
    held = out["partition: jobs held by the cut-off worker"]
    assert held >= 1, done.stdout  # the cut came mid-backlog
    assert out["partition: of those, rescued while it was cut off"] == held
    assert out["partition: cut-off worker noticed after (s)"] <= 1 + 2 * 2 + SLACK
    assert out["partition: rejoined after the network came back (s)"] is not None
    assert out["innocent posts classified once"] == POSTS  # and none twice (a violation)
    # The run's namespace and veth pair (named after its pid) are gone; the other test of
    # this file may have its own at this moment.
    names = {f"vf{run.pid}", f"vf{run.pid}h", f"vf{run.pid}n"}
    assert not names & _ours()
    assert time.monotonic() - started < RUN_TIMEOUT
