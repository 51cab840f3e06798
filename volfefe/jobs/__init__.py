"""Background jobs on procrastinate (queue `ml_classification`): the Oban analogue.

`app` registers the tasks, `runner` runs a job worker (signals, restarts), `queue` holds the
SQL over procrastinate's tables (enqueue, status, retry, prune), `retry` the retry policy.
"""
