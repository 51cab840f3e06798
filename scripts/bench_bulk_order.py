#!/usr/bin/env python3
"""A bulk `Classifier.classify_many` call: texts in the caller's order against the same
texts sorted by length, at several `VOLFEFE_BATCH_TOKENS`, in one run.

    .venv/bin/python scripts/bench_bulk_order.py [--model DIR] [--budgets 4096,1024]
                                                 [--rounds N] [--posts N] [--quick]

A library or HTTP caller hands volfefe posts in whatever order they come; `classify --all`
sorts its own. The pool cuts a caller's texts into requests shortest first, so the two
orders should run at the same speed: this script shows whether they do. One warm classifier
per budget (onnx int8, one child, boot excluded), `--rounds` interleaved rounds, median
posts/s. Run it with `PYTHONPATH` set to another checkout to measure that code instead.
Without `--model` it uses the FinBERT-sized random model that scripts/bench_realtime.py
builds and caches; `--quick` uses the tiny test model (the figures then mean nothing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_realtime


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: FinBERT-sized)")
    parser.add_argument("--budgets", default="4096,1024", help="VOLFEFE_BATCH_TOKENS values")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="tiny model, 40 posts, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.posts, args.rounds = 40, 2
    os.environ.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    from volfefe import Classifier, Settings

    with tempfile.TemporaryDirectory(prefix="volfefe-bulk-") as tmp:
        workdir = Path(tmp)
        model, _ = bench_realtime.ensure_model(args.quick, args.model, workdir)
        sizes = bench_realtime.QUICK if args.quick else bench_realtime.FULL
        env = {
            "VOLFEFE_BACKEND": "onnx",
            "VOLFEFE_QUANTIZE": "int8",
            "VOLFEFE_WORKERS": "1",
            "VOLFEFE_ONNX_CACHE": str(bench_realtime.onnx_cache(sizes, workdir)),
        }
        texts = bench_realtime.corpus(args.posts, seed=2)  # as its drain posts are drawn
        orders = {"caller's order": texts, "sorted by length": sorted(texts, key=len)}
        budgets = [int(b) for b in args.budgets.split(",")]
        classifiers = {}
        for budget in budgets:
            settings = Settings.from_env(
                {**env, "VOLFEFE_BATCH_TOKENS": str(budget)}, model=str(model)
            )
            classifiers[budget] = Classifier(settings)
            classifiers[budget].start()
            classifiers[budget].classify_many(texts[:20])  # warm
        rates: dict[tuple[int, str], list[float]] = {(b, o): [] for b in budgets for o in orders}
        try:
            for round_ in range(args.rounds):
                turn = budgets if round_ % 2 == 0 else budgets[::-1]
                for budget in turn:
                    for order, batch in orders.items():
                        started = time.perf_counter()
                        classifiers[budget].classify_many(batch)
                        rates[(budget, order)].append(len(batch) / (time.perf_counter() - started))
        finally:
            for classifier in classifiers.values():
                classifier.close()
    print(f"onnx int8, {args.posts} posts, {args.rounds} rounds, median posts/s")
    print("| VOLFEFE_BATCH_TOKENS | caller's order | sorted by length | caller's / sorted |")
    print("| ---: | ---: | ---: | ---: |")
    for budget in budgets:
        mixed = statistics.median(rates[(budget, "caller's order")])
        ordered = statistics.median(rates[(budget, "sorted by length")])
        print(f"| {budget} | {mixed:.1f} | {ordered:.1f} | {mixed / ordered:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
