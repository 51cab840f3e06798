"""The job backlog over time, rebuilt from procrastinate's event log (`procrastinate_events`):
each event is a state change of a job, so the jobs waiting (`todo`) and running (`doing`) at
the end of a bucket are the sum of the changes up to then.

```
event               waiting  running      event        waiting  running
deferred  (new)       +1                  succeeded               -1
started              -1       +1          failed                  -1
deferred_for_retry   +1       -1          aborted                 -1
retried   (manual)   +1                   cancelled    -1  (a waiting job settled)
```
Pruning (`jobs prune`) deletes finished jobs with their events: a pruned job adds nothing at
any time, so the figures are exact after the prune horizon and miss the pruned jobs before it.
Each bucket also counts the attempts that failed for good and the retries queued in it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from volfefe.jobs.queue import QUEUE

HISTORY = """
WITH ev AS (
    SELECT e.at, e.type,
           CASE e.type WHEN 'deferred' THEN 1 WHEN 'deferred_for_retry' THEN 1
                       WHEN 'retried' THEN 1 WHEN 'started' THEN -1 WHEN 'cancelled' THEN -1
                       ELSE 0 END AS waiting,
           CASE e.type WHEN 'started' THEN 1 WHEN 'deferred_for_retry' THEN -1
                       WHEN 'succeeded' THEN -1 WHEN 'failed' THEN -1 WHEN 'aborted' THEN -1
                       ELSE 0 END AS running
    FROM procrastinate_events AS e
    JOIN procrastinate_jobs AS j ON j.id = e.job_id
    WHERE j.queue_name = %(queue)s AND e.type <> 'scheduled' AND e.at < %(until)s
),
base AS (
    SELECT coalesce(sum(waiting), 0) AS waiting, coalesce(sum(running), 0) AS running
    FROM ev WHERE at < %(start)s
),
per AS (
    SELECT date_bin(%(step)s::interval, at, %(start)s::timestamptz) AS start,
           sum(waiting) AS waiting, sum(running) AS running,
           count(*) FILTER (WHERE type = 'failed') AS failed,
           count(*) FILTER (WHERE type = 'deferred_for_retry') AS retries
    FROM ev WHERE at >= %(start)s
    GROUP BY 1
),
buckets AS (
    SELECT s AS start
    FROM generate_series(
        %(start)s::timestamptz, %(until)s::timestamptz, %(step)s::interval
    ) AS s
    WHERE s < %(until)s
)
SELECT b.start,
       (base.waiting + sum(coalesce(per.waiting, 0)) OVER w)::bigint AS waiting,
       (base.running + sum(coalesce(per.running, 0)) OVER w)::bigint AS running,
       coalesce(per.failed, 0) AS failed,
       coalesce(per.retries, 0) AS retries
FROM buckets AS b
CROSS JOIN base
LEFT JOIN per ON per.start = b.start
WINDOW w AS (ORDER BY b.start)
ORDER BY b.start
"""


def backlog_history(
    conn: psycopg.Connection[Any], start: datetime, until: datetime, step: timedelta
) -> list[dict[str, Any]]:
    """Each bucket of `step` from `start` to `until`, oldest first: its start, the jobs
    waiting and running at its end (the last one: at `until`), and the failures and retries
    in it."""
    params = {"queue": QUEUE, "start": start, "until": until, "step": step}
    return [dict(row) for row in conn.execute(HISTORY, params)]
