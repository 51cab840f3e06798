"""A bulk `Classifier.classify_many` call: texts in the caller's order against the same
texts sorted by length, at several `VOLFEFE_FORWARD_TOKENS`, in one run.

    .venv/bin/python -m benches run bulk_order [--model DIR] [--budgets 1024,512]
                                               [--backend onnx_int8|...] [--rounds N]
                                               [--posts N] [--quick] [--set VOLFEFE_NAME=VALUE]

A library or HTTP caller hands volfefe posts in whatever order they come; `classify --all`
sorts its own. The pool cuts a caller's texts into requests shortest first, so the two
orders should run at the same speed: this suite shows whether they do, and what the
forward-pass budget (which also cuts a caller's texts into calls) is worth on this CPU. One
warm classifier per budget (`--backend`, default onnx int8; one child, boot excluded),
`--rounds` interleaved rounds, median posts/s. To measure another checkout's code, run it
from that checkout's folder with `PYTHONPATH` set to it (children import the working
directory's package first).
Without `--model` it uses the FinBERT-sized random model of the harness (built once,
cached); `--quick` uses the tiny test model (the figures then mean nothing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from ..harness.model import ensure_model
from ..harness.suite import Outcome, Suite
from ..harness.tables import markdown_table
from . import realtime

BACKENDS = {**realtime.BASE_BACKENDS, **realtime.BF16_BACKENDS}


def budget_list(text: str) -> list[int]:
    """`--budgets`: comma-separated VOLFEFE_FORWARD_TOKENS values.

    >>> budget_list("1024,512")
    [1024, 512]
    """
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of token counts: {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The suite's own options."""
    parser.add_argument("--model", type=Path, help="model folder (default: FinBERT-sized)")
    parser.add_argument(
        "--budgets", type=budget_list, default=[1024, 512], help="VOLFEFE_FORWARD_TOKENS values"
    )
    parser.add_argument("--backend", default="onnx_int8", choices=sorted(BACKENDS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--posts", type=int, default=300)


def run(args: argparse.Namespace, settings: Mapping[str, str]) -> Outcome:
    """Every budget, both orders, interleaved rounds; the table of medians on stdout."""
    if args.quick:
        args.posts, args.rounds = 40, 2
    os.environ.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    from volfefe import Classifier, Settings

    with tempfile.TemporaryDirectory(prefix="volfefe-bulk-") as tmp:
        workdir = Path(tmp)
        model, kind = ensure_model(args.model, args.quick, workdir)
        sizes = realtime.QUICK if args.quick else realtime.FULL
        env = {
            **BACKENDS[args.backend],
            "VOLFEFE_WORKERS": "1",
            "VOLFEFE_EXPORT_CACHE": str(realtime.export_cache(sizes, workdir)),
            **settings,
        }
        texts = realtime.corpus(args.posts, seed=2)  # as its drain posts are drawn
        orders = {"caller's order": texts, "sorted by length": sorted(texts, key=len)}
        budgets: list[int] = args.budgets
        classifiers = {}
        for budget in budgets:
            config = Settings.from_env(
                {**env, "VOLFEFE_FORWARD_TOKENS": str(budget)}, model=str(model)
            )
            classifiers[budget] = Classifier(config)
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
    medians = [
        (
            budget,
            statistics.median(rates[(budget, "caller's order")]),
            statistics.median(rates[(budget, "sorted by length")]),
        )
        for budget in budgets
    ]
    header = ["VOLFEFE_FORWARD_TOKENS", "caller's order", "sorted by length", "caller's / sorted"]
    table = [
        [b, f"{mixed:.1f}", f"{ordered:.1f}", f"{mixed / ordered:.2f}"]
        for b, mixed, ordered in medians
    ]
    print("\n".join(markdown_table(header, "rrrr", table)))
    records = [
        {
            "forward_tokens": budget,
            "callers_order_posts_per_s": round(mixed, 2),
            "sorted_posts_per_s": round(ordered, 2),
            "callers_vs_sorted": round(mixed / ordered, 3),
        }
        for budget, mixed, ordered in medians
    ]
    report = {
        "backend": args.backend,
        "model_kind": kind,
        "posts": args.posts,
        "rounds": args.rounds,
        "budgets": records,
    }
    return Outcome(report, records)


SUITE = Suite(
    name="bulk_order",
    description="A bulk classify_many call: the caller's order against length-sorted, at "
    "several VOLFEFE_FORWARD_TOKENS.",
    add_arguments=add_arguments,
    run=run,
)
