"""The harness's end-of-run checks catch what they promise to, on a real database."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.jobs.helpers import enqueue_posts, insert_posts
from volfefe.chaos.checks import check_jobs, check_posts
from volfefe.errors import CallTimeout, WorkerCrashed
from volfefe.supervisor.policy import poison_from

CLASSIFY = """
INSERT INTO classifications (content_id, sentiment, confidence, model_version)
VALUES (%(id)s, 'neutral', 0.5, 'tiny@test')
"""


def without_quarantine_columns(conn: psycopg.Connection[Any]) -> None:
    """The schema before migration 0004, whose branch of the checks these tests exercise."""
    conn.execute("ALTER TABLE contents DROP COLUMN quarantined_at, DROP COLUMN quarantine_reason")


def classify(conn: psycopg.Connection[Any], *ids: int) -> None:
    for content_id in ids:
        conn.execute(CLASSIFY, {"id": content_id})


def test_missing_innocent_posts_and_silent_poison_posts_are_violations(
    db_conn: psycopg.Connection[Any],
) -> None:
    a, b, c, poison = insert_posts(db_conn, ["up", "down", "flat", "chaospoison"])
    without_quarantine_columns(db_conn)
    classify(db_conn, a, b)
    outcomes, violations = check_posts(db_conn, [a, b, c], [poison], {})
    assert outcomes["innocent posts classified once"] == 2
    assert violations == [
        f"1 innocent posts not classified: {c}",
        "poison posts neither quarantined (no quarantine column in this schema) nor reported "
        f"as failed with PoisonText or a WorkerError: {poison}",
    ]


def test_a_poison_post_reported_as_crashed_or_poison_passes_without_quarantine_column(
    db_conn: psycopg.Connection[Any],
) -> None:
    a, p1, p2 = insert_posts(db_conn, ["up", "chaospoison 1", "chaospoison 2"])
    without_quarantine_columns(db_conn)
    classify(db_conn, a)
    failures = {p1: ["WorkerCrashed: the child crashed"], p2: ["PoisonText: it kills"]}
    outcomes, violations = check_posts(db_conn, [a], [p1, p2], failures)
    assert violations == []
    assert outcomes["poison posts failed as PoisonText/WorkerError"] == 2


def test_with_the_quarantine_columns_a_poison_post_must_be_quarantined(
    db_conn: psycopg.Connection[Any],
) -> None:
    a, p1, p2 = insert_posts(db_conn, ["up", "chaospoison 1", "chaospoison 2"])
    classify(db_conn, a)
    db_conn.execute(
        "UPDATE contents SET quarantined_at = now(), quarantine_reason = 'killed a child'"
        " WHERE id = ANY(%(ids)s)",
        {"ids": [p1, a]},
    )
    failures = {p2: ["PoisonText: it kills"]}  # a failure is not enough once quarantine exists
    outcomes, violations = check_posts(db_conn, [a], [p1, p2], failures)
    assert outcomes["poison posts quarantined"] == 1
    assert violations == [f"poison posts not quarantined: {p2}", f"innocent posts quarantined: {a}"]


def test_an_innocent_post_poisoned_by_a_child_the_run_signalled_is_excused(
    db_conn: psycopg.Connection[Any],
) -> None:
    by_run, by_job, not_ours, poison = insert_posts(db_conn, ["a", "b", "c", "chaospoison"])
    db_conn.execute(
        "UPDATE contents SET quarantined_at = now() WHERE id = ANY(%(ids)s)",
        {"ids": [by_run, by_job, not_ours, poison]},
    )
    [job_id] = enqueue_posts(db_conn, [by_job])
    frozen = poison_from(CallTimeout(5.0, pid=333))  # the message the pool gives
    db_conn.execute(
        "INSERT INTO volfefe_job_attempts (job_id, content_id, attempt, outcome, error_type,"
        " message) VALUES (%(job)s, %(post)s, 1, 'quarantined', 'PoisonText', %(message)s)",
        {"job": job_id, "post": by_job, "message": f"PoisonText: {frozen}"},
    )
    failures = {
        by_run: [f"PoisonText: {poison_from(WorkerCrashed(pid=111, returncode=-9))}"],
        not_ours: [f"PoisonText: {poison_from(WorkerCrashed(pid=222, returncode=-9))}"],
    }
    innocent = [by_run, by_job, not_ours]
    outcomes, violations = check_posts(db_conn, innocent, [poison], failures, {111, 333})
    assert outcomes["innocent posts poisoned by a signalled child (excused)"] == 2
    assert violations == [
        f"1 innocent posts not classified: {not_ours}",
        f"innocent posts quarantined: {not_ours}",
    ]


def test_a_job_left_in_doing_is_a_violation(db_conn: psycopg.Connection[Any]) -> None:
    posts = insert_posts(db_conn, ["up", "down"])
    jobs = enqueue_posts(db_conn, posts)
    assert check_jobs(db_conn, []) == ({"jobs todo": 2, "innocent posts with a failed job": 0}, [])
    db_conn.execute(
        "UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %(id)s", {"id": jobs[0]}
    )
    outcomes, violations = check_jobs(db_conn, [])
    assert outcomes["jobs doing"] == 1
    assert violations == ["1 jobs left in doing after the drain"]
