"""The volfefe child: classify financial sentiment with a BERT model (FinBERT by default).

One-shot, for people debugging a model by hand (all of stdin is one text):

    echo "Stocks rally on good news" | python -m volfefe.child [--model M]
    echo "Stocks rally on good news" | python worker/classify.py [--model M]   # the same
    {"sentiment":"positive","confidence":0.95,"model_version":"...","meta":{...}}

Serve mode, for the orchestrator: `python -m volfefe.child --serve` loads the model once,
prints one ready line, then answers newline-delimited JSON requests (see volfefe/protocol.py)
until EOF on stdin. Stdout carries the protocol and nothing else: anything else that writes
to stdout (libraries, warnings, progress bars) is redirected to stderr.

Text handling (docs/architecture.md, Text rules): invalid UTF-8 on stdin becomes U+FFFD; NUL and
control characters are dropped by the tokenizer; text longer than --max-chars characters is cut
before tokenising, and anything over the model's maximum length is truncated, both reported as
`meta.truncated`. Exit codes: 0 ok, 1 the text could not be classified, 2 usage, 3 the model
could not be loaded.

VOLFEFE_WORKER_FAULT (tests only, off unless set) injects one failure; see
`volfefe.child.faults`. This module imports the protocol and the child's own modules only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson

from volfefe.child.answer import answer, read_line
from volfefe.child.backends.layered_backend import StagedPredict
from volfefe.child.backends.layered_backend import load_engine as load_staged_engine
from volfefe.child.backends.layered_backend import warm_up as warm_up_stages
from volfefe.child.backends.onnx_backend import share_one_runtime
from volfefe.child.engine import Engine, ModelLoadError
from volfefe.child.faults import Fault, fault_from_env
from volfefe.child.hub import HUB_TIMEOUT, ModelUnavailable
from volfefe.child.preempt import Scheduler
from volfefe.protocol import (
    DEFAULT_FORWARD_TOKENS,
    DEFAULT_MAX_CHARS,
    DEFAULT_MODEL,
    DEFAULT_SHORT_TOKENS,
    EXIT_BOOT_FAILED,
    GUARDED_SCHEMES,
    PREEMPT_MODES,
    QUANTIZE_SCHEMES,
    ItemError,
    Reply,
    default_export_cache,
    encode,
    is_blank,
)


def load_engine(args: argparse.Namespace) -> Engine:
    """Load the model with the chosen backend (ModelLoadError when it cannot be used)."""
    if args.backend in ("onnx", "openvino"):
        folder = args.export_dir
        if folder is None:  # by hand: export (or reuse) like the orchestrator does
            from volfefe.child.export import default_calibration, ensure_export

            folder = ensure_export(
                args.export_cache,
                args.model,
                args.revision,
                args.quantize,
                args.backend,
                calibration=default_calibration() if args.quantize in GUARDED_SCHEMES else None,
            )
        if args.backend == "openvino":
            from volfefe.child.backends.openvino_backend import load_engine as load_exported
        else:
            from volfefe.child.backends.onnx_backend import load_engine as load_exported
        return load_exported(
            folder,
            threads=args.threads,
            max_chars=args.max_chars,
            forward_tokens=args.forward_tokens,
        )
    from volfefe.child.backends.torch_backend import load_engine as load_torch

    return load_torch(
        args.model,
        args.revision,
        threads=args.threads,
        device=args.device,
        quantize=args.quantize,
        max_chars=args.max_chars,
        forward_tokens=args.forward_tokens,
        digest_cache=args.export_cache / ".digests",
        hub_timeout=args.hub_timeout,
    )


def load_layered(args: argparse.Namespace) -> tuple[Engine, StagedPredict]:
    """Load the layered ONNX export (--preempt layers) and its staged predict
    (ModelLoadError when it cannot be used)."""
    if args.backend != "onnx":
        raise ModelLoadError(
            f"--preempt layers needs the onnx backend, not {args.backend} "
            "(set VOLFEFE_BACKEND=onnx, or VOLFEFE_PREEMPT=off)"
        )
    folder = args.export_dir
    if folder is None:  # by hand: export (or reuse) like the orchestrator does
        from volfefe.child.export import ensure_export

        folder = ensure_export(
            args.export_cache, args.model, args.revision, args.quantize, "onnx-layered"
        )
    share_one_runtime(args.threads)  # the export is done: no other onnxruntime from here
    return load_staged_engine(
        folder,
        threads=args.threads,
        max_chars=args.max_chars,
        forward_tokens=args.forward_tokens,
        short_tokens=args.short_tokens,
    )


def serve(engine: Engine, proto_in: IO[bytes], proto_out: IO[bytes], fault: Fault | None) -> None:
    """Answer request lines until EOF, one reply line each, flushed at once."""
    proto_out.write(encode(engine.ready))
    proto_out.flush()
    for line in proto_in:
        read = read_line(line)
        reply = read if isinstance(read, Reply) else answer(engine, read, proto_out, fault)
        proto_out.write(encode(reply))
        proto_out.flush()
    if fault is not None:
        fault.on_eof()


def one_shot(engine_factory: Callable[[], Engine], data: bytes, out: IO[bytes]) -> int:
    """Classify all of `data` as one text and print one JSON object; return the exit code."""
    text = data.decode("utf-8", "replace").strip()
    if is_blank(text):
        # The same name and words as the CLI and the library (volfefe.errors.NoTextError).
        message = "no text to classify: stdin was empty"
        _print_json(out, {"error": {"type": "NoTextError", "message": message}})
        return 1
    engine = engine_factory()
    item = engine.classify([text])[0]
    if isinstance(item, ItemError):
        _print_json(out, {"error": {"type": item.type, "message": item.message}})
        return 1
    _print_json(
        out,
        {
            "sentiment": item.sentiment,
            "confidence": item.confidence,
            "model_version": engine.ready.model_version,
            "meta": {
                "raw_scores": item.raw_scores,
                "truncated": item.truncated,
                "tokens": item.tokens,
            },
        },
    )
    return 0


def _print_json(out: IO[bytes], obj: dict[str, Any]) -> None:
    out.write(orjson.dumps(obj) + b"\n")
    out.flush()


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL us when the parent dies, so a hung child never outlives it."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; the model defaults to VOLFEFE_MODEL, then finbert-tone."""
    parser = argparse.ArgumentParser(description="Classify financial sentiment (volfefe child).")
    parser.add_argument(
        "--serve", action="store_true", help="answer NDJSON requests on stdin until EOF"
    )
    parser.add_argument(
        "--model",
        default=os.environ.get("VOLFEFE_MODEL") or DEFAULT_MODEL,
        help="hub id or local folder",
    )
    parser.add_argument("--revision", default=os.environ.get("VOLFEFE_REVISION") or None)
    parser.add_argument(
        "--hub-timeout",
        type=float,
        default=float(os.environ.get("VOLFEFE_HUB_TIMEOUT") or HUB_TIMEOUT),
        help="seconds for the hub to answer before a hub model loads from the cache only",
    )
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument(
        "--backend",
        default=os.environ.get("VOLFEFE_BACKEND") or "torch",
        choices=["torch", "onnx", "openvino"],
        help="torch (reference), onnx (ONNX Runtime) or openvino; the last two never import torch",
    )
    parser.add_argument(
        "--export-dir",
        "--onnx-dir",
        type=Path,
        help="an exported model folder (onnx and openvino backends)",
    )
    parser.add_argument(
        "--export-cache",
        "--onnx-cache",  # its old name
        type=Path,
        default=default_export_cache(os.environ),
        help="where exports (and weight digests) are cached when --export-dir is not given",
    )
    parser.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS)
    parser.add_argument(
        "--quantize",
        default=os.environ.get("VOLFEFE_QUANTIZE") or "none",
        choices=QUANTIZE_SCHEMES,
        help="int8: int8 weights (torch, onnx: dynamic; openvino: weights only); "
        "int8-static: weights and activations, calibrated (openvino); bf16, "
        "int8-static-bf16: the float parts in bf16 (openvino); the last three are guarded",
    )
    parser.add_argument(
        "--preempt",
        default=os.environ.get("VOLFEFE_PREEMPT") or "off",
        choices=PREEMPT_MODES,
        help="layers: run the model layer by layer (onnx backend, layered export) and answer "
        "shorter waiting requests between two layers of a long one; replies may then leave "
        "out of order",
    )
    parser.add_argument(
        "--short-tokens",
        type=int,
        default=DEFAULT_SHORT_TOKENS,
        help="with --preempt layers: a pass of texts of at most this many tokens runs the "
        "one-graph model, never paused",
    )
    parser.add_argument(
        "--forward-tokens",
        type=int,
        default=DEFAULT_FORWARD_TOKENS,
        help="padded tokens per forward pass",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code."""
    args = parse_args(argv)
    fault = fault_from_env(os.environ)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    proto_out = os.fdopen(os.dup(1), "wb")  # keep the real stdout for the protocol only
    os.dup2(2, 1)  # every stray print or library progress bar now lands on stderr
    if args.serve:
        _die_with_parent()
        if fault is not None:
            fault.on_boot()
    try:
        if not args.serve:
            return one_shot(lambda: load_engine(args), sys.stdin.buffer.read(), proto_out)
        staged = None
        if args.preempt == "layers":
            engine, staged = load_layered(args)
        else:
            engine = load_engine(args)
        # Before the fault switch: a warm-up pass is not a request.
        if staged is not None:
            warm_up_stages(engine, staged)
        else:
            engine.warm_up()
        if fault is not None:
            engine.predict = fault.wrap_predict(engine.predict)
    except ModelLoadError as exc:
        print(f"volfefe worker: {exc}", file=sys.stderr)
        if not args.serve:
            kind = "ModelUnavailable" if isinstance(exc, ModelUnavailable) else "ModelLoadError"
            _print_json(proto_out, {"error": {"type": kind, "message": str(exc)}})
            return EXIT_BOOT_FAILED
        sys.stderr.flush()
        os._exit(EXIT_BOOT_FAILED)  # at once: unloading torch can take seconds, and says nothing
    if staged is not None:
        Scheduler(engine, staged, sys.stdin.buffer, proto_out, fault).serve()
    else:
        serve(engine, sys.stdin.buffer, proto_out, fault)
    return 0
