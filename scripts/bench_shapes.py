#!/usr/bin/env python3
"""What a new forward-pass size costs a backend: each size's first pass against its second.

    .venv/bin/python scripts/bench_shapes.py [--row openvino_int8_static_bf16]
                                             [--sizes 1x16,1x32,...] [--quick]

One engine of `--row` (a row of scripts/bench_runtimes.py, its export cached there), loaded
and warmed up as a child does, then passes of several sizes (rows x tokens), each run twice
in a row: the first pays for whatever the runtime prepares for a size it has not met, the
second shows the pass itself (`--sizes` picks the sizes: lone posts of 16 and 32 tokens,
say, to see what a short post's pass costs). OpenVINO prepares kernels per size, so a fresh
child pays once for each size it meets; ONNX Runtime does not. Without `--model` it uses
the FinBERT-sized random model of bench_runtimes.py; `--quick` the tiny test model (figures
mean nothing).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_runtimes

# Sizes a run of posts meets: lone posts of several lengths, and full passes of ~1024 tokens.
SIZES = [(1, 200), (1, 300), (1, 512), (4, 41), (4, 61), (20, 50), (64, 16), (63, 16), (2, 512)]


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """`rows x tokens` pairs from "1x16,4x41".

    >>> parse_sizes("1x16, 4x41")
    [(1, 16), (4, 41)]
    """
    sizes = []
    for part in text.split(","):
        rows, _, tokens = part.strip().partition("x")
        if not (rows.isdigit() and tokens.isdigit() and int(rows) > 0 and int(tokens) > 0):
            raise argparse.ArgumentTypeError(f"not ROWSxTOKENS: {part.strip()!r}")
        sizes.append((int(rows), int(tokens)))
    return sizes


def main(argv: list[str] | None = None) -> int:
    """Print one line per size: first pass, second pass, the difference (ms)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", default="openvino_int8_static_bf16", choices=bench_runtimes.OURS)
    parser.add_argument("--sizes", type=parse_sizes, default=SIZES, help="e.g. 1x16,1x32")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="volfefe-shapes-") as tmp:
        work = Path(tmp)
        model, _ = bench_runtimes.ensure_model(args.model, args.quick, 1234, work)
        exports = (
            work / "exports" if args.quick else bench_runtimes.cache_root() / "exports-runtimes"
        )
        folder = bench_runtimes.export_all(model, exports, [args.row])[args.row]
        engine = bench_runtimes.load_ours(args.row, folder, os.cpu_count() or 1)
        engine.warm_up()
        print(f"{args.row}: ms of a size's first pass, its second, and the difference")
        print("| rows x tokens | first | second | first - second |")
        print("| --- | ---: | ---: | ---: |")
        for rows, tokens in args.sizes:
            if tokens > engine.max_length:
                continue
            batch = [[engine.pad_id + 5] * tokens] * rows
            took = []
            for _ in range(2):
                started = time.perf_counter()
                engine._forward(batch)
                took.append((time.perf_counter() - started) * 1000)
            print(
                f"| {rows} x {tokens} | {took[0]:.1f} | {took[1]:.1f} | {took[0] - took[1]:.1f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
