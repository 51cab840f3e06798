"""Poison quarantine: a post whose text kills a child is quarantined, and nothing retries it by
itself; the innocent posts around it are classified as usual.

The fault `poison=WORD` makes every child SIGKILL itself on a request holding WORD, so the
poison posts kill a child each time they are sent, alone or not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from tests.helpers import eventually
from tests.jobs.conftest import StartWorker
from tests.jobs.helpers import (
    attempts,
    classifications_per_post,
    classify_jobs,
    enqueue_posts,
    insert_posts,
    status_of,
    volfefe,
)
from volfefe.jobs.queue import enqueue, unclassified_ids

DEADLINE = 180.0
WORD = "xpoisonx"
INNOCENT = [
    "Stocks rally after the rate cut",
    "Markets tumble on tariff fears",
    "Bonds steady as the Fed holds",
    "Exporters cheer the trade deal",
    "Oil slides on weak demand",
    "Banks gain after earnings",
    "The dollar firms against the yen",
    "Tech shares lead a broad advance",
]


def quarantine_of(conn: psycopg.Connection[Any], ids: list[int]) -> dict[int, Any]:
    """content_id -> (quarantined_at is set, reason) for these posts."""
    rows = conn.execute(
        "SELECT id, quarantined_at IS NOT NULL AS q, quarantine_reason FROM contents"
        " WHERE id = ANY(%(ids)s)",
        {"ids": ids},
    ).fetchall()
    return {row["id"]: (row["q"], row["quarantine_reason"]) for row in rows}


def test_a_burst_of_poison_posts_in_the_job_worker(
    database_url: str, db_conn: psycopg.Connection[Any], start_worker: StartWorker
) -> None:
    # Six poison posts kill at least twelve children, well past the default budget of five
    # restarts a minute: a poison post explains its own failures, so they never break the
    # pool, and no innocent job fails.
    texts: list[str] = []
    for i, text in enumerate(INNOCENT):
        texts += [text, f"{WORD} number {i}"] if i % 4 != 3 else [text]
    ids = insert_posts(db_conn, texts)
    poison = [i for i, text in zip(ids, texts, strict=True) if WORD in text]
    innocent = [i for i in ids if i not in poison]
    job_ids = dict(zip(ids, enqueue_posts(db_conn, ids), strict=True))
    worker = start_worker(database_url, concurrency=4, fault=f"poison={WORD}", once=False)

    eventually(
        lambda: all(status_of(db_conn, j) in ("succeeded", "failed") for j in job_ids.values()),
        timeout=DEADLINE,
    )

    assert classifications_per_post(db_conn) == dict.fromkeys(innocent, 1)
    for post in innocent:
        assert status_of(db_conn, job_ids[post]) == "succeeded", attempts(db_conn, job_ids[post])
    for post in poison:
        assert status_of(db_conn, job_ids[post]) == "failed"
        [(attempt, outcome, error_type, _)] = attempts(db_conn, job_ids[post])
        assert (attempt, outcome, error_type) == (1, "quarantined", "PoisonText")
    quarantined = quarantine_of(db_conn, poison + innocent)
    for post in poison:
        flag, reason = quarantined[post]
        assert flag and "SIGKILL" in reason, reason
    assert not any(quarantined[post][0] for post in innocent)

    # Nothing retries a quarantined post by itself: the periodic enqueue finds nothing to do.
    assert unclassified_ids(db_conn) == []
    assert not enqueue(db_conn, unclassified_ids(db_conn)).queued
    status = json.loads(volfefe(database_url, "jobs", "status", "--json").stdout)
    assert status["quarantined"] == len(poison)
    assert {p["content_id"] for p in status["quarantined_posts"]} == set(poison)

    # `jobs retry` forces a try: the job runs once more, and the text kills a child again.
    forced = volfefe(database_url, "jobs", "retry", str(job_ids[poison[0]]))
    assert forced.returncode == 0, forced.stderr
    eventually(lambda: len(attempts(db_conn, job_ids[poison[0]])) == 2, timeout=DEADLINE)
    assert attempts(db_conn, job_ids[poison[0]])[1][:2] == (2, "quarantined")
    assert worker.running(), "poison never takes the job worker down"
    assert len(classify_jobs(db_conn)) == len(ids)  # no job was added behind our back


def test_two_poison_posts_through_classify_all(
    database_url: str, db_conn: psycopg.Connection[Any], tiny_model: Path
) -> None:
    texts = [*INNOCENT[:3], f"Tariffs {WORD}", *INNOCENT[3:6], f"{WORD} twice"]
    ids = insert_posts(db_conn, texts)
    poison = [ids[3], ids[-1]]
    env = {
        "VOLFEFE_MODEL": str(tiny_model),
        "VOLFEFE_WORKERS": "1",
        "VOLFEFE_THREADS": "1",
        "VOLFEFE_WORKER_FAULT": f"poison={WORD}",
    }

    run = volfefe(database_url, "classify", "--all", "--json", env=env)

    assert run.returncode == 1, run.stderr
    summary = json.loads(run.stdout)
    assert (summary["succeeded"], summary["failed"]) == (len(ids) - 2, 2)
    assert {f["content_id"] for f in summary["failures"]} == set(poison)
    assert all(f["reason"].startswith("PoisonText: ") for f in summary["failures"])
    assert set(classifications_per_post(db_conn)) == set(ids) - set(poison)
    assert all(flag for flag, _ in quarantine_of(db_conn, poison).values())

    again = volfefe(database_url, "classify", "--all", "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["total"] == 0, "classify --all leaves quarantined posts"

    stats = json.loads(volfefe(database_url, "stats", "--json").stdout)
    assert (stats["quarantined"], stats["unclassified"]) == (2, 0)
    shown = volfefe(database_url, "show", str(poison[0]))
    assert "quarantined: since " in shown.stdout and "SIGKILL" in shown.stdout

    # classify --ids forces a try; without the fault it succeeds and lifts the quarantine.
    healthy = {k: v for k, v in env.items() if k != "VOLFEFE_WORKER_FAULT"}
    forced = volfefe(database_url, "classify", "--ids", str(poison[0]), "--json", env=healthy)
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["succeeded"] == 1
    assert quarantine_of(db_conn, [poison[0]])[poison[0]] == (False, None)
