"""The orchestrator: supervised child processes behind the `Classifier` API.

```
Classifier ── LoopThread (private loop) ── PoolOwner ── Pool ── batching ── Port x N ── child
```
`port` speaks to one child, `pool` owns N ports and every request it accepted (restart budget,
retries, deadlines, the bounded queue), `owner` rebuilds a broken pool after a backoff,
`policy` holds the rules (budget, backoffs, poison), `batching` gathers callers' texts into
batches, `child_env` decides what a child may see of the environment, `provision` prepares
the files a child loads (the ONNX export), `classifier` is the public, thread-safe API.
"""
