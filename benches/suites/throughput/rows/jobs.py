"""The jobs row: every post enqueued, then `volfefe jobs worker` timed from its process start
until no job is waiting or running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ....harness.database import database_url, fresh_database
from ....harness.logs import log
from ....harness.process import ROOT, stop_process, tail, volfefe
from ..prepare import prepare_database, prepare_model
from ..results import Context

POLL_INTERVAL = 0.1  # seconds between job-queue polls


def bench_jobs(ctx: Context) -> None:
    """Enqueue every post, start `jobs worker`, time until no job is waiting or running."""
    from volfefe.jobs.queue import QUEUE, status
    from volfefe.store.connect import connect

    plan, texts, results = ctx.plan, ctx.texts, ctx.results
    with fresh_database(plan.workdir, "jobs") as db_env:
        env = {
            **os.environ,
            **db_env,
            "VOLFEFE_MODEL": str(plan.model),
            "VOLFEFE_BACKEND": "torch",
            # The hourly enqueue of unclassified posts is not part of a drain; a worker started
            # just after the hour runs it, and a post whose job finishes between its select and
            # its enqueue gets a second job (it ends as already_classified), which the count
            # below would take for a lost one.
            "VOLFEFE_JOBS_ENQUEUE_CRON": "off",
        }
        prepare_s = prepare_model(plan, env)
        prepare_database(plan, texts, env, "jobs")
        # The import's trigger queued the posts already (auto-enqueue); this queues any rest.
        queued = json.loads(volfefe(["jobs", "enqueue", "--all", "--json"], env, plan.timeout))
        waiting = queued["queued"] + len(queued["already_queued"])
        if waiting != len(texts):
            raise RuntimeError(f"{waiting} of {len(texts)} posts have a job")
        url = database_url(db_env)
        log_path = plan.workdir / "jobs-worker.log"
        with connect(url) as conn, log_path.open("wb") as worker_log:
            started = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "-m", "volfefe", "jobs", "worker"],
                env=env,
                cwd=ROOT,
                stdout=worker_log,
                stderr=subprocess.STDOUT,
            )
            try:
                counts = wait_drained(conn, QUEUE, status, proc, started + plan.timeout, log_path)
                elapsed = time.monotonic() - started
            finally:
                code = stop_process(proc)
    if counts.get("succeeded", 0) != len(texts):
        raise RuntimeError(f"not every job succeeded: {counts}")
    results.posts_per_s["jobs"] = len(texts) / elapsed
    log(f"jobs: {len(texts) / elapsed:.2f} posts/s ({len(texts)} posts in {elapsed:.1f} s)")
    from volfefe import Settings

    concurrency = Settings.from_env(env).job_slots
    results.details["jobs"] = {
        "posts": len(texts),
        "seconds": round(elapsed, 3),
        "concurrency": concurrency,
        "worker_exit_after_sigterm": code,
        "prepare_s": prepare_s,
        "source": "worker start to no job todo/doing (includes the child's boot)",
    }


def wait_drained(
    conn: Any,
    queue: str,
    status: Callable[[Any], dict[str, Any]],
    proc: subprocess.Popen[bytes],
    deadline: float,
    log_path: Path,
) -> dict[str, int]:
    """Poll the queue until nothing is todo/doing; the final counts by state."""
    while True:
        counts: dict[str, int] = status(conn)["queues"].get(queue, {})
        if counts.get("todo", 0) + counts.get("doing", 0) == 0:
            return counts
        if proc.poll() is not None:
            raise RuntimeError(
                f"jobs worker exited {proc.returncode}:\n{tail(log_path.read_bytes())}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs not drained within the timeout: {counts}")
        time.sleep(POLL_INTERVAL)
