#!/usr/bin/env python3
"""What running the model stage by stage costs: one-graph against layered ONNX passes.

    python scripts/layered_overhead.py MODEL_DIR [--cache DIR] [--rounds 30] [--threads N]

For fp32 and int8, loads the one-graph export and the layered export (VOLFEFE_PREEMPT=layers)
of MODEL_DIR as a child does (both cached in --cache), warms both up, then times passes of a
few sizes (rows x tokens), the two engines taking turns, and prints the median of each and
the difference. Nothing is preempted here: this is the bare price of the extra graphs, the
pause points and the hidden state crossing between sessions. For the lead's quiet machine
(issue 26), with the FinBERT-sized model of scripts/make_finbert_like_model.py; a stopgap
until the runtimes suite has a layered row.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

SIZES = ((1, 16), (1, 64), (1, 128), (1, 512), (8, 128))


def main() -> None:
    """Print one line per scheme and size."""
    from volfefe.child.backends import layered_backend, onnx_backend
    from volfefe.child.export import ensure_export

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "layered")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    args.cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    options = {"threads": args.threads, "max_chars": 20_000, "forward_tokens": 1024}
    model = str(args.model.resolve())
    for scheme in ("none", "int8"):
        one = onnx_backend.load_engine(ensure_export(args.cache, model, None, scheme), **options)
        folder = ensure_export(args.cache, model, None, scheme, "onnx-layered")
        layered = layered_backend.load_engine(folder, **options)[0]
        one.warm_up()
        layered.warm_up()
        for rows, tokens in SIZES:
            batch = [[one.pad_id + 5] * tokens] * rows
            took: dict[str, list[float]] = {"one": [], "layered": []}
            for _ in range(args.rounds):
                for name, engine in (("one", one), ("layered", layered)):
                    started = time.perf_counter()
                    engine._forward(batch)
                    took[name].append((time.perf_counter() - started) * 1000)
            a, b = statistics.median(took["one"]), statistics.median(took["layered"])
            print(
                f"{scheme:4} {rows:2} x {tokens:3}: one graph {a:8.2f} ms, layered {b:8.2f} ms, "
                f"{b - a:+7.2f} ms ({b / a - 1:+.1%})"
            )


if __name__ == "__main__":
    main()
