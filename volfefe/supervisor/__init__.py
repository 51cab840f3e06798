"""The orchestrator: supervised child processes behind the `Classifier` API.

```
Classifier ── LoopThread (private asyncio loop) ── Pool ── batching ── Port x N ── child
```
`port` speaks to one child, `pool` owns N ports and every request it accepted (restart budget,
retries), `batching` gathers callers' texts into batches, `provision` prepares the files a child
loads (the ONNX export), `classifier` is the public, thread-safe API.
"""
