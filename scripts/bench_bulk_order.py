#!/usr/bin/env python3
"""A bulk `Classifier.classify_many` call: texts in the caller's order against the same
texts sorted by length, at several `VOLFEFE_FORWARD_TOKENS`, in one run.

    .venv/bin/python scripts/bench_bulk_order.py [--model DIR] [--budgets 1024,512]
                                                 [--backend onnx_int8|...] [--rounds N]
                                                 [--posts N] [--quick]

A library or HTTP caller hands volfefe posts in whatever order they come; `classify --all`
sorts its own. The pool cuts a caller's texts into requests shortest first, so the two
orders should run at the same speed: this script shows whether they do, and what the
forward-pass budget (which also cuts a caller's texts into calls) is worth on this CPU. One
warm classifier per budget (`--backend`, default onnx int8; one child, boot excluded),
`--rounds` interleaved rounds, median posts/s. To measure another checkout's code, run it
from that checkout's folder with `PYTHONPATH` set to it (children import the working
directory's package first).
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

BACKENDS = {**bench_realtime.BACKENDS, **bench_realtime.BF16_BACKENDS}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: FinBERT-sized)")
    parser.add_argument("--budgets", default="1024,512", help="VOLFEFE_FORWARD_TOKENS values")
    parser.add_argument("--backend", default="onnx_int8", choices=sorted(BACKENDS))
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
            **BACKENDS[args.backend],
            "VOLFEFE_WORKERS": "1",
            "VOLFEFE_ONNX_CACHE": str(bench_realtime.onnx_cache(sizes, workdir)),
        }
        texts = bench_realtime.corpus(args.posts, seed=2)  # as its drain posts are drawn
        orders = {"caller's order": texts, "sorted by length": sorted(texts, key=len)}
        budgets = [int(b) for b in args.budgets.split(",")]
        classifiers = {}
        for budget in budgets:
            settings = Settings.from_env(
                {**env, "VOLFEFE_FORWARD_TOKENS": str(budget)}, model=str(model)
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
    print(f"{args.backend}, {args.posts} posts, {args.rounds} rounds, median posts/s")
    print("| VOLFEFE_FORWARD_TOKENS | caller's order | sorted by length | caller's / sorted |")
    print("| ---: | ---: | ---: | ---: |")
    for budget in budgets:
        mixed = statistics.median(rates[(budget, "caller's order")])
        ordered = statistics.median(rates[(budget, "sorted by length")])
        print(f"| {budget} | {mixed:.1f} | {ordered:.1f} | {mixed / ordered:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
