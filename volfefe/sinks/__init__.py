"""Sinks: every stored classification sent to webhooks and a event bus, at least once.

```
classifications ──(commit: NOTIFY volfefe_classified)──> Deliverer (deliver.py), per process
  version, written_by (migration 0008)                     │ LISTEN; wakes every sink's task
                                                           │ + a safety poll per sink
volfefe_sinks: cursor (written_by, version), health        ▼
  table.py: add/list/pause/remove, cursor, health     one task per sink, if its advisory
                                                      lock is ours (one process per sink):
outbox.py: the versions after a cursor, in order  <──   read after the cursor (outbox.py)
  event.py: the body and the webhook-id                send each (transport.py): webhook
backoff.py: exponential, jittered                        or NATS JetStream; advance cursor
                                                         on failure: backoff, retry same one
```

Delivery runs outside the classification path: in `python -m volfefe deliver`, or beside the
job worker (`jobs worker`, `serve --with-worker`; `--no-deliver` turns it off). This package
imports store, config, errors and result, never jobs, web or cli.
"""
