"""The end-of-run checks, read from the database after the drain.

```
every innocent post      exactly one classification
every poison post        no classification; quarantined (when `contents.quarantined_at`
                         exists) or else at least one failure recorded as PoisonText or a
                         WorkerError (by a classify run or a job attempt)
the classification queue no job left in `doing`
```
One case is excused, not a violation: an innocent post whose PoisonText names a child this
run signalled. Its batch failed (a poison post in it killed the child), then the harness
killed, froze or garbled the child of its solo retry: two failures, a poison verdict by the
rules, and the harness's doing. It is counted apart.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import psycopg

from volfefe.errors import PoisonText, WorkerError
from volfefe.jobs.queue import QUEUE

SHOWN = 10  # ids listed in one violation at most

HAS_COLUMN = """
SELECT 1 FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = %(table)s AND column_name = %(column)s
"""
RESULTS = """
SELECT c.id, count(k.id) AS results
FROM contents AS c LEFT JOIN classifications AS k ON k.content_id = c.id
WHERE c.id = ANY(%(ids)s) GROUP BY c.id
"""
QUARANTINED = "SELECT id FROM contents WHERE id = ANY(%(ids)s) AND quarantined_at IS NOT NULL"
ATTEMPT_ERRORS = """
SELECT content_id, error_type FROM volfefe_job_attempts
WHERE content_id = ANY(%(ids)s) AND error_type IS NOT NULL
"""
JOBS_BY_STATUS = """
SELECT status::text AS status, count(*) AS n FROM procrastinate_jobs
WHERE queue_name = %(queue)s GROUP BY status
"""
FAILED_JOB_POSTS = """
SELECT DISTINCT (args ->> 'content_id')::bigint AS content_id FROM procrastinate_jobs
WHERE queue_name = %(queue)s AND status = 'failed'
"""
POISON_MESSAGES = """
SELECT content_id, message FROM volfefe_job_attempts
WHERE content_id = ANY(%(ids)s) AND error_type = 'PoisonText'
"""
CHILD_PID = re.compile(r"made a child \(pid (\d+)\) fail")
FAILED_ATTEMPT_ERRORS = """
SELECT coalesce(error_type, '?') AS error_type, count(*) AS n FROM volfefe_job_attempts
WHERE outcome = 'failed' AND content_id = ANY(%(ids)s) GROUP BY 1 ORDER BY 1
"""


def poison_error_names() -> frozenset[str]:
    """PoisonText and every WorkerError class name: how a poison post's failure reads."""
    names = {PoisonText.__name__}
    todo: list[type[BaseException]] = [WorkerError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return frozenset(names)


def has_quarantine(conn: psycopg.Connection[Any]) -> bool:
    """Whether the schema has the quarantine columns (migration 0004)."""
    found = conn.execute(HAS_COLUMN, {"table": "contents", "column": "quarantined_at"})
    return found.fetchone() is not None


def check_posts(
    conn: psycopg.Connection[Any],
    innocent: list[int],
    poison: list[int],
    run_failures: Mapping[int, Iterable[str]],
    signalled: Collection[int] = (),
) -> tuple[dict[str, Any], list[str]]:
    """(outcome counts, violations) for the posts; `signalled`: the pids of the children the
    run killed, froze or garbled."""
    results = {
        row["id"]: row["results"] for row in conn.execute(RESULTS, {"ids": innocent + poison})
    }
    framed = framed_by_the_harness(conn, innocent, run_failures, signalled)
    missing = [i for i in innocent if results.get(i, 0) == 0 and i not in framed]
    doubled = [i for i in innocent if results.get(i, 0) > 1]
    poison_classified = [i for i in poison if results.get(i, 0) > 0]
    violations = []
    if missing:
        violations.append(f"{len(missing)} innocent posts not classified: {_ids(missing)}")
    if doubled:
        violations.append(f"{len(doubled)} innocent posts classified twice: {_ids(doubled)}")
    if poison_classified:
        violations.append(f"poison posts classified: {_ids(poison_classified)}")
    outcomes: dict[str, Any] = {
        "innocent posts classified once": len(innocent) - len(missing) - len(doubled),
        "innocent posts not classified": len(missing),
    }
    if framed:
        outcomes["innocent posts poisoned by a signalled child (excused)"] = len(framed)
    if has_quarantine(conn):
        quarantined = {r["id"] for r in conn.execute(QUARANTINED, {"ids": innocent + poison})}
        loose = [i for i in poison if i not in quarantined]
        wrongly = sorted(quarantined.difference(poison).difference(framed))
        outcomes["poison posts quarantined"] = len(poison) - len(loose)
        outcomes["innocent posts quarantined"] = len(wrongly)
        if loose:
            violations.append(f"poison posts not quarantined: {_ids(loose)}")
        if wrongly:
            violations.append(f"innocent posts quarantined: {_ids(wrongly)}")
        return outcomes, violations
    errors: dict[int, set[str]] = {i: set() for i in poison}
    for content_id, reasons in run_failures.items():
        if content_id in errors:
            errors[content_id].update(r.split(":", 1)[0] for r in reasons)
    for row in conn.execute(ATTEMPT_ERRORS, {"ids": poison}):
        errors[row["content_id"]].add(row["error_type"])
    names = poison_error_names()
    unreported = [i for i in poison if not errors[i] & names]
    outcomes["poison posts failed as PoisonText/WorkerError"] = len(poison) - len(unreported)
    if unreported:
        violations.append(
            f"poison posts neither quarantined (no quarantine column in this schema) nor "
            f"reported as failed with PoisonText or a WorkerError: {_ids(unreported)}"
        )
    return outcomes, violations


def framed_by_the_harness(
    conn: psycopg.Connection[Any],
    innocent: list[int],
    run_failures: Mapping[int, Iterable[str]],
    signalled: Collection[int],
) -> set[int]:
    """Innocent posts whose PoisonText (in a classify run or a job attempt) names a child
    whose pid is in `signalled`."""
    if not signalled:
        return set()
    verdicts = [(i, r) for i in innocent for r in run_failures.get(i, ())]
    rows = conn.execute(POISON_MESSAGES, {"ids": innocent})
    verdicts += [(row["content_id"], row["message"] or "") for row in rows]
    return {
        content_id
        for content_id, text in verdicts
        if (found := CHILD_PID.search(text)) and int(found.group(1)) in signalled
    }


def check_jobs(
    conn: psycopg.Connection[Any], poison: list[int]
) -> tuple[dict[str, Any], list[str]]:
    """(outcome counts, violations) for the classification queue."""
    counts = {r["status"]: r["n"] for r in conn.execute(JOBS_BY_STATUS, {"queue": QUEUE})}
    failed = [r["content_id"] for r in conn.execute(FAILED_JOB_POSTS, {"queue": QUEUE})]
    outcomes = {f"jobs {status}": n for status, n in sorted(counts.items())}
    innocent_failed = sorted(set(failed).difference(poison))
    outcomes["innocent posts with a failed job"] = len(innocent_failed)
    if innocent_failed:
        errors = conn.execute(FAILED_ATTEMPT_ERRORS, {"ids": innocent_failed})
        outcomes["  their last errors"] = ", ".join(f"{r['error_type']} {r['n']}" for r in errors)
    violations = []
    if counts.get("doing"):
        violations.append(f"{counts['doing']} jobs left in doing after the drain")
    return outcomes, violations


def _ids(ids: list[int]) -> str:
    shown = ", ".join(map(str, ids[:SHOWN]))
    return shown + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")
