"""volfefe's benchmarks: one harness, one module per suite, results committed as JSON.

```
benches/
  __main__.py   python -m benches list | run SUITE ... | render
  harness/      what every suite shares, each once: the model (cache), a fresh database, the
                corpus, percentiles, tables, logging, `--set`, the result JSON, the docs pages
  suites/       throughput, realtime, runtimes, http, shapes, bulk_order (suites.SUITES)
  results/      committed result JSON, one folder per CPU: benches/results/<cpu-slug>/*.json
```

Adding a suite: a module under suites/ with a `SUITE` (`harness.suite.Suite`: its name, a
line of description, its options and its run), listed in `suites.SUITES`, and its rows'
checks in tests/bench/test_benches.py. Nothing here asserts a timing: the benches report.
"""
