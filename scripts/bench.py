#!/usr/bin/env python3
"""Throughput, latency, cold start and memory of volfefe, next to the bare model, in one run.

    .venv/bin/python scripts/bench.py [--model DIR] [--posts N] [--seed N] [--quick]
                                      [--json PATH] [--keep]

The entry point: the bench itself is the package next to this file, `scripts/volfefe_bench/`;
its docstring (`volfefe_bench/__init__.py`) explains the model, the corpus, every row and the
figures, and how to add a row.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The checkout's volfefe (run without the package installed) and the bench package beside
# this file (on the path already when run as a script, not when a test loads it by path).
for folder in (HERE.parent, HERE):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from volfefe_bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
