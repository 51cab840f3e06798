"""The crash-isolation harness: `python -m volfefe chaos --seed S --posts N --minutes M`.

```
schedule.py   which fault when, from random.Random(seed)
posts.py      synthetic posts, a few poison, imported in waves and queued
database.py   a private embedded PostgreSQL: restart, pause (SIGSTOP), stop
fleet.py      the real processes: `jobs worker` x N, `classify --all` runs
procs.py      /proc: the process tree, volfefe children, subreaper, orphans
inject.py     one fault against what is alive now   close_load.py  close() under load
netns.py      a worker's own host: namespace, veth pair, forwarder to the database
partition.py  the partition-worker fault: cut, heal, and what must happen meanwhile
checks.py     end-of-run checks on the database      report.py      table and JSON
harness.py    the phases: setup, chaos, drain, checks
```
"""
