"""The throughput suite: throughput, latency, cold start and memory of volfefe, next to the
bare model, in one run.

    .venv/bin/python -m benches run throughput [--model DIR] [--posts N] [--seed N] [--quick]
                                               [--json PATH] [--keep] [--set VOLFEFE_NAME=VALUE]

Without `--model` it benchmarks a FinBERT-sized random model (`make_finbert_like_model.py`:
finbert-tone's architecture and vocabulary size, so the compute is the real model's), built
once into the benches' cache under the system temp dir and reused (`harness.model`).
`--quick` uses the tiny test model and a few posts instead: every code path runs, in about a
minute, and the figures mean nothing (a test runs it so this suite cannot rot). Nothing here
asserts a timing: it reports.

The corpus is the non-empty texts of data/sample_posts.jsonl (many short posts, a few of
several thousand characters), shuffled with `--seed` and repeated to `--posts` posts.

Rows, in posts per second:

```
spawn          one `python worker/classify.py --model DIR` process per post (the first design)
pipeline       transformers pipeline("text-classification"), one text per call, in-process
pipeline_b16   the same pipeline over the list with batch_size=16
ceiling        bare loop: tokenise, sort by length, batches of <= 1024 padded tokens, forward
pool           Classifier(...).classify_many(texts) through the children, no database
classify_fp32  `python -m volfefe classify --all --json` on a fresh database (its posts_per_s)
classify_int8  the same with VOLFEFE_QUANTIZE=int8 (n/a, with the reason, where unsupported)
jobs           `jobs enqueue --all`, then `jobs worker` from its start until no job is waiting
```

Also: cold start (spawn to ready line of `python -m volfefe.child --serve`, spawned as the pool
spawns it, median of 3), latency of single `Classifier.classify` calls on an idle pool (p50/p95
of 50) next to the bare single-text forward p50 (interleaved with them, text by text, so both
see the same machine), and each child's peak RSS (VmHWM) after the pool run. `--quick` times 1
spawned post, 1 cold start and 10 single calls. In-process rows and the pool get a short
warm-up first. The targets of the throughput issue are printed with whether each is met; they
only mean something for the FinBERT-sized model on a quiet machine.

The in-process rows (pipeline, pipeline_b16, ceiling, bare forward) run torch; the product rows
(pool, classify, jobs, cold start) run whatever backend volfefe's settings resolve (with
`backend=auto`, ONNX Runtime when installed). Exports the children load are made once, before
the timed rows (an untimed `volfefe predict` per CLI row), into the bench's own cache: the work
folder with `--quick`, else `<tmp>/volfefe-bench-cache/onnx` next to the cached model.

The database rows use a fresh database per row (`harness.database`: on $DATABASE_URL's server
when set, else the embedded server in a temporary VOLFEFE_DATA_DIR). VOLFEFE_* variables of the
environment that choose what a row measures (backend, quantisation, model, data dir) are
dropped; the others (workers, threads, batch size, jobs concurrency) are the configuration
under test, as are `--set` settings, and the report prints them. The report (the result
JSON's `report`) holds every figure, the ratios, the targets, the machine and the settings.
Exit status: 0 every row ran (or is documented n/a), 1 a row failed.

Layout: `cli` (options, plan, run, the `SUITE`); `results` holds the plan, the figures and
the table's rows; `rows/` measures, one module per kind of row, with `prepare` (the untimed
preparation of a CLI row) under them; `registry.STEPS` says which step fills which rows, in
run order; `report` turns the results into the report and the printed table. Adding a row:
its note in `results.NOTES` (which orders the table), a step function taking the `Context` in
`rows/`, and a `Step` in `registry.STEPS`; a goal, if it has one, in `report.targets`.
"""
