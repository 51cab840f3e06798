"""Migration 0005: a post written by any SQL gets one classification job, in its transaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.jobs.helpers import classify_jobs, insert_posts, jobs_per_post
from volfefe.jobs.queue import QUEUE, TASK, enqueue
from volfefe.result import Classification
from volfefe.store.importer import import_posts
from volfefe.store.posts import replace_classification, save_classification, save_classifications
from volfefe.store.switches import auto_enqueue, set_auto_enqueue

pytestmark = pytest.mark.db


@pytest.fixture
def conn(db_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """This test's database with auto-enqueue on (the template has it off)."""
    set_auto_enqueue(db_conn, True)
    return db_conn


def test_plain_insert_queues_one_job_per_post_with_text(conn: psycopg.Connection[Any]) -> None:
    ids = insert_posts(conn, ["Tariffs hit exporters", "   ", "Stocks rally"])
    jobs = classify_jobs(conn)
    assert [j["content_id"] for j in jobs] == [ids[0], ids[2]]  # the blank post gets none
    row = conn.execute(
        "SELECT queue_name, task_name FROM procrastinate_jobs WHERE id = %(id)s",
        {"id": jobs[0]["id"]},
    ).fetchone()
    assert row == {"queue_name": QUEUE, "task_name": TASK}


def test_rolled_back_insert_leaves_no_job(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(RuntimeError), conn.transaction():
        insert_posts(conn, ["never committed"])
        raise RuntimeError("roll back")
    assert classify_jobs(conn) == []


def test_text_change_queues_again_only_without_an_active_job(
    conn: psycopg.Connection[Any],
) -> None:
    [post] = insert_posts(conn, ["first text"])
    conn.execute("UPDATE contents SET text = 'second text' WHERE id = %(id)s", {"id": post})
    assert jobs_per_post(conn) == {post: 1}  # still waiting: deduplicated
    conn.execute("UPDATE procrastinate_jobs SET status = 'succeeded'")
    conn.execute("UPDATE contents SET author = 'someone' WHERE id = %(id)s", {"id": post})
    assert jobs_per_post(conn) == {post: 1}  # not a text change
    conn.execute("UPDATE contents SET text = 'third text' WHERE id = %(id)s", {"id": post})
    assert jobs_per_post(conn) == {post: 2}
    conn.execute("UPDATE procrastinate_jobs SET status = 'succeeded'")
    conn.execute("UPDATE contents SET text = ' ' WHERE id = %(id)s", {"id": post})
    assert jobs_per_post(conn) == {post: 2}  # blank now: nothing to classify


def test_enqueue_after_the_trigger_reports_already_queued(conn: psycopg.Connection[Any]) -> None:
    ids = insert_posts(conn, ["one", "two"])
    report = enqueue(conn, ids)
    assert (report.queued, sorted(report.already_queued)) == ({}, ids)
    assert jobs_per_post(conn) == {ids[0]: 1, ids[1]: 1}


def test_switched_off_no_job(conn: psycopg.Connection[Any]) -> None:
    set_auto_enqueue(conn, False)
    assert not auto_enqueue(conn)
    insert_posts(conn, ["quiet"])
    assert classify_jobs(conn) == []


def test_quarantined_posts_are_not_queued(conn: psycopg.Connection[Any]) -> None:
    # The column comes with migration 0004 (quarantine); add it here when it is not there yet.
    conn.execute("ALTER TABLE contents ADD COLUMN IF NOT EXISTS quarantined_at timestamptz")
    [post] = insert_posts(conn, ["poison"])
    conn.execute("UPDATE procrastinate_jobs SET status = 'failed'")
    conn.execute(
        "UPDATE contents SET quarantined_at = now(), text = 'poison again' WHERE id = %(id)s",
        {"id": post},
    )
    assert jobs_per_post(conn) == {post: 1}


def test_db_migrate_applies_the_switch(database_url: str, db_conn: psycopg.Connection[Any]) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    argv = [sys.executable, "-m", "volfefe", "db", "migrate"]
    for value in ("on", "off"):
        done = subprocess.run(
            argv,
            env={**env, "VOLFEFE_AUTO_ENQUEUE": value},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == f"auto-enqueue {value}"
        assert auto_enqueue(db_conn) is (value == "on")
    unset = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert unset.stdout == "database schema is up to date\n"
    assert not auto_enqueue(db_conn)  # unset leaves the database's choice alone


def test_import_enqueue_with_the_trigger_queues_each_post_once(
    database_url: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        "".join(
            json.dumps({"source": "rt", "external_id": f"p{i}", "text": f"Rates cut {i}"}) + "\n"
            for i in range(3)
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "volfefe", "import", str(posts), "--enqueue"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "queued 0 classification jobs, 3 already queued"
    assert sorted(jobs_per_post(conn).values()) == [1, 1, 1]


def test_reimport_with_a_changed_text_queues_the_post_again(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    posts = tmp_path / "posts.jsonl"
    row = {"source": "rt", "external_id": "edited", "text": "Rates cut"}
    posts.write_text(json.dumps(row) + "\n")
    import_posts(conn, posts)
    import_posts(conn, posts)  # unchanged: no second job
    [only] = classify_jobs(conn)
    conn.execute("UPDATE procrastinate_jobs SET status = 'succeeded'")
    posts.write_text(json.dumps({**row, "text": "Rates hiked"}) + "\n")
    import_posts(conn, posts)  # INSERT ... ON CONFLICT DO UPDATE: the update trigger fires
    assert jobs_per_post(conn) == {only["content_id"]: 2}


def waiting_jobs(conn: psycopg.Connection[Any]) -> list[int]:
    """Posts whose classification job is waiting (`todo`)."""
    return [j["content_id"] for j in classify_jobs(conn) if j["status"] == "todo"]


def test_classify_all_after_an_import_leaves_no_waiting_job(
    database_url: str, conn: psycopg.Connection[Any], tmp_path: Path, tiny_model: Path
) -> None:
    """scripts/run with auto-enqueue on: import (the trigger queues), then classify --all."""
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        "".join(
            json.dumps({"source": "rt", "external_id": f"p{i}", "text": f"Rates cut {i}"}) + "\n"
            for i in range(5)
        )
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "HF_HUB_OFFLINE": "1",
        "VOLFEFE_MODEL": str(tiny_model),
        "VOLFEFE_WORKERS": "1",
        "VOLFEFE_THREADS": "1",
    }
    for argv in (["import", str(posts)], ["classify", "--all", "--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "volfefe", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["succeeded"] == 5

    assert waiting_jobs(conn) == []
    jobs = classify_jobs(conn)
    assert [j["status"] for j in jobs] == ["cancelled"] * 5
    outcomes = conn.execute(
        "SELECT job_id, attempt, outcome FROM volfefe_job_attempts ORDER BY job_id"
    ).fetchall()
    assert [(o["job_id"], o["attempt"], o["outcome"]) for o in outcomes] == [
        (j["id"], 1, "already_classified") for j in jobs
    ]


def test_every_result_writer_settles_a_waiting_job_and_leaves_a_running_one(
    conn: psycopg.Connection[Any],
) -> None:
    first, second, third, running = insert_posts(conn, ["one", "two", "three", "four"])
    # A job worker took `running`'s job: it is `doing`, and stores its own result.
    worker = conn.execute(
        "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now()) RETURNING id"
    ).fetchone()
    assert worker is not None
    conn.execute(
        "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %(w)s"
        " WHERE (args ->> 'content_id')::bigint = %(id)s",
        {"w": worker["id"], "id": running},
    )
    given = Classification("positive", 0.9, "m@1")
    save_classification(conn, first, given)  # classify --ids
    save_classifications(conn, [(second, given), (running, given)])  # classify --all
    assert waiting_jobs(conn) == [third]
    [again] = enqueue(conn, [first]).queued.values()  # named on purpose: a job for a done post
    replace_classification(conn, first, Classification("negative", 0.8, "m@2"))  # reclassify

    statuses = {j["id"]: (j["content_id"], j["status"]) for j in classify_jobs(conn)}
    assert sorted(statuses.values()) == sorted(
        [
            (first, "cancelled"),
            (first, "cancelled"),
            (second, "cancelled"),
            (third, "todo"),
            (running, "doing"),
        ]
    )
    assert statuses[again] == (first, "cancelled")
