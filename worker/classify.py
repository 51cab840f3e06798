#!/usr/bin/env python3
"""The volfefe child: classify financial sentiment with a BERT model (FinBERT by default).

One-shot, for people debugging a model by hand (all of stdin is one text):

    echo "Stocks rally on good news" | python worker/classify.py [--model M]
    {"sentiment":"positive","confidence":0.95,"model_version":"...","meta":{...}}

Serve mode, for the orchestrator: `python worker/classify.py --serve` loads the model once,
prints one ready line, then answers newline-delimited JSON requests (see volfefe/protocol.py)
until EOF on stdin. Stdout carries the protocol and nothing else: anything else that writes
to stdout (libraries, warnings, progress bars) is redirected to stderr.

Text handling (documented in the README): invalid UTF-8 on stdin becomes U+FFFD; NUL and
control characters are dropped by the tokenizer; text longer than --max-chars characters is cut
before tokenising, and anything over the model's maximum length is truncated, both reported as
`meta.truncated`. Exit codes: 0 ok, 1 the text could not be classified, 2 usage, 3 the model
could not be loaded.

VOLFEFE_WORKER_FAULT (tests only, off unless set) injects one failure; see `Fault`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

try:
    from volfefe.protocol import (
        EXIT_BOOT_FAILED,
        DecodeError,
        ItemError,
        ItemResult,
        Ready,
        Reply,
        clean_text,
        decode_request,
        encode,
        is_blank,
    )
except ModuleNotFoundError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from volfefe.protocol import (
        EXIT_BOOT_FAILED,
        DecodeError,
        ItemError,
        ItemResult,
        Ready,
        Reply,
        clean_text,
        decode_request,
        encode,
        is_blank,
    )

import orjson

DEFAULT_MODEL = "yiyanghkust/finbert-tone"
FINBERT_ORDER = ("neutral", "positive", "negative")
SENTIMENTS = frozenset(FINBERT_ORDER)
DEFAULT_MAX_CHARS = 20_000
DEFAULT_BATCH_TOKENS = 1024


class Fault:
    """Test-only failure injection, read from VOLFEFE_WORKER_FAULT before the heavy imports.

    Modes: `boot-fail` (exit 3 before ready), `boot-hang` (never ready), `slow-start=S`
    (sleep S seconds before loading), `stdout-noise` (print junk through `print` before ready,
    which must land on stderr), `delay=S` (sleep S seconds before every reply, so a test can
    act while a run is under way), `crash@N` / `hang@N` / `garbage@N` (on the N-th request:
    SIGKILL itself, hang forever, write a non-JSON line), `poison=WORD` (SIGKILL itself on any
    request holding a text that contains WORD). With VOLFEFE_WORKER_FAULT_ONCE=PATH the
    request faults fire in one child only: the first to create PATH.
    """

    def __init__(self, spec: str, once_path: str) -> None:
        self.mode, _, arg = spec.partition("@") if "@" in spec else spec.partition("=")
        self.arg = arg
        self.once_path = once_path
        self.requests = 0

    def on_boot(self) -> None:
        """Fire the boot-time modes."""
        if self.mode == "boot-fail":
            print("fault injected: boot-fail", file=sys.stderr)
            sys.exit(EXIT_BOOT_FAILED)
        if self.mode == "boot-hang":
            _hang()
        if self.mode == "slow-start":
            time.sleep(float(self.arg))
        if self.mode == "stdout-noise":
            print("this stray print must not reach the protocol stream")

    def on_request(self, texts: list[str], out: IO[bytes]) -> None:
        """Fire the request-time modes, counting requests from 1."""
        self.requests += 1
        if self.mode == "delay":
            time.sleep(float(self.arg))
            return
        due = self.mode in ("crash", "hang", "garbage") and self.requests == int(self.arg)
        poisoned = self.mode == "poison" and any(self.arg in t for t in texts)
        if not (due or poisoned) or not self._claim():
            return
        if self.mode == "garbage":
            out.write(b"\x00this is not json\n")
            out.flush()
            return
        if self.mode == "hang":
            _hang()
        os.kill(os.getpid(), 9)

    def _claim(self) -> bool:
        if not self.once_path:
            return True
        try:
            os.close(os.open(self.once_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True


def _hang() -> None:
    while True:
        time.sleep(3600)


class ModelLoadError(Exception):
    """The model cannot be loaded or its labels cannot be mapped to sentiments."""


def resolve_labels(id2label: dict[int, str]) -> list[str]:
    """Sentiment names in class-id order, from the model's `id2label`.

    Names that already say positive/negative/neutral are used (any case); generic names
    (LABEL_0, LABEL_1, LABEL_2) follow finbert-tone's order: neutral, positive, negative.

    >>> resolve_labels({0: "Neutral", 1: "Positive", 2: "Negative"})
    ['neutral', 'positive', 'negative']
    >>> resolve_labels({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    ['neutral', 'positive', 'negative']
    """
    names = [str(id2label[i]).strip().lower() for i in sorted(id2label)]
    if sorted(names) == sorted(SENTIMENTS):
        return names
    if len(names) == 3 and names == [f"label_{i}" for i in range(3)]:
        return list(FINBERT_ORDER)
    raise ModelLoadError(
        f"cannot map the model's labels {names} to positive/negative/neutral: "
        "use a 3-class sentiment model whose id2label names them, or LABEL_0..2 in "
        "finbert-tone's order (neutral, positive, negative)"
    )


def model_version_of(model: str, revision: str | None, commit: str | None) -> str:
    """Identify model and revision: `hub/id@commit` or, for a folder, `name@content-hash`."""
    path = Path(model)
    if not path.is_dir():
        return f"{model}@{(commit or revision or 'main')[:12]}"
    digest = hashlib.sha256()
    for file in sorted(path.iterdir()):
        if file.suffix in (".json", ".txt") and file.stat().st_size < 10_000_000:
            digest.update(file.name.encode() + file.read_bytes())
        elif file.suffix in (".safetensors", ".bin"):
            size = file.stat().st_size
            digest.update(f"{file.name}:{size}".encode())
            with file.open("rb") as fh:  # ends of the weights: cheap and distinctive
                digest.update(fh.read(1 << 20))
                fh.seek(max(0, size - (1 << 20)))
                digest.update(fh.read(1 << 20))
    return f"{path.resolve().name}@{digest.hexdigest()[:12]}"


@dataclass
class Engine:
    """A loaded model and tokenizer that classify batches of texts."""

    model: Any
    tokenizer: Any
    labels: list[str]
    device: str
    max_length: int
    max_chars: int
    batch_tokens: int
    ready: Ready

    def classify(self, texts: list[str]) -> list[ItemResult | ItemError]:
        """Classify `texts`; a blank text or a failed sub-batch gives an ItemError in its place."""
        results: list[ItemResult | ItemError | None] = [None] * len(texts)
        todo: list[tuple[int, list[int], bool]] = []  # (index, input ids, truncated)
        for i, text in enumerate(texts):
            if is_blank(text):
                results[i] = ItemError("EmptyText", "the text is empty or whitespace only")
                continue
            cut = len(text) > self.max_chars
            todo.append((i, *self._encode(text[: self.max_chars], cut)))
        todo.sort(key=lambda item: len(item[1]))
        for batch in _token_budget_batches(todo, self.batch_tokens):
            try:
                scores = self._forward([ids for _, ids, _ in batch])
            except Exception as exc:  # one failed batch must not end the child
                error = ItemError(type(exc).__name__, str(exc), traceback.format_exc())
                for index, _, _ in batch:
                    results[index] = error
                continue
            for (index, ids, truncated), row in zip(batch, scores, strict=True):
                results[index] = self._result(row, truncated, len(ids))
        return [r for r in results if r is not None]

    def _encode(self, text: str, cut: bool) -> tuple[list[int], bool]:
        ids: list[int] = self.tokenizer(text, truncation=True, max_length=self.max_length)[
            "input_ids"
        ]
        truncated = cut
        if not cut and len(ids) >= self.max_length:
            full = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
            truncated = len(full) + 2 > self.max_length
        return ids, truncated

    def _forward(self, batch: list[list[int]]) -> list[list[float]]:
        import torch

        padded = self.tokenizer.pad({"input_ids": batch}, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(
                input_ids=padded["input_ids"].to(self.device),
                attention_mask=padded["attention_mask"].to(self.device),
            ).logits
            probs: list[list[float]] = torch.softmax(logits.float(), dim=-1).cpu().tolist()
        return probs

    def _result(self, row: list[float], truncated: bool, tokens: int) -> ItemResult:
        scores = {label: round(p, 6) for label, p in zip(self.labels, row, strict=True)}
        best = max(range(len(row)), key=row.__getitem__)
        return ItemResult(self.labels[best], round(row[best], 6), scores, truncated, tokens)


def _token_budget_batches(
    items: list[tuple[int, list[int], bool]], budget: int
) -> Iterator[list[tuple[int, list[int], bool]]]:
    """Split length-sorted items so each batch's padded size (rows x longest) stays in budget."""
    batch: list[tuple[int, list[int], bool]] = []
    for item in items:
        if batch and (len(batch) + 1) * len(item[1]) > budget:
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantisation of every Linear layer (weights int8, activations per batch)."""
    import warnings

    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # deprecated in favour of torchao, still the CPU fast path
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)  # type: ignore[no-untyped-call]


def pick_device(wanted: str) -> str:
    """`auto` means cuda when present, then mps, else cpu."""
    import torch

    if wanted != "auto":
        return wanted
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def load_engine(args: argparse.Namespace) -> Engine:
    """Import torch/transformers, load model and tokenizer, and map labels (ModelLoadError)."""
    import torch

    torch.set_num_threads(args.threads)
    with contextlib.suppress(RuntimeError):  # already set only when embedded in a larger process
        torch.set_num_interop_threads(1)
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if (
        args.model.startswith(("/", "./", "../", "~"))
        and not Path(args.model).expanduser().is_dir()
    ):
        raise ModelLoadError(f"model folder {args.model!r} does not exist")
    transformers.utils.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            args.model, revision=args.revision, trust_remote_code=False
        )
        model = AutoModelForSequenceClassification.from_pretrained(
            args.model, revision=args.revision, trust_remote_code=False
        )
    except (OSError, ValueError) as exc:
        hint = ""
        if not Path(args.model).is_dir():
            hint = (
                " (is the model hub reachable? Without network, set VOLFEFE_MODEL or "
                "--model to a local folder holding the model)"
            )
        raise ModelLoadError(f"cannot load model {args.model!r}: {exc}{hint}") from exc
    labels = resolve_labels({int(k): v for k, v in model.config.id2label.items()})
    device = pick_device(args.device)
    model.to(device)
    model.eval()
    if args.quantize == "int8":
        model = quantize_int8(model)
    max_length = min(
        int(getattr(model.config, "max_position_embeddings", 512)),
        int(tokenizer.model_max_length or 512),
        512,
    )
    version = model_version_of(
        args.model, args.revision, getattr(model.config, "_commit_hash", None)
    )
    if args.quantize == "int8":
        version += "+int8"  # other numerics: never mixed up with fp32 results
    ready = Ready(
        model=args.model,
        model_version=version,
        labels=labels,
        device=device,
        threads=torch.get_num_threads(),
        pid=os.getpid(),
        max_length=max_length,
    )
    return Engine(
        model, tokenizer, labels, device, max_length, args.max_chars, args.batch_tokens, ready
    )


def serve(engine: Engine, proto_in: IO[bytes], proto_out: IO[bytes], fault: Fault | None) -> None:
    """Answer request lines until EOF, one reply line each, flushed at once."""
    proto_out.write(encode(engine.ready))
    proto_out.flush()
    for line in proto_in:
        try:
            request = decode_request(line)
        except DecodeError as exc:
            reply = Reply(_guess_id(line), error=ItemError("BadRequest", str(exc)))
        else:
            if fault is not None:
                fault.on_request(request.texts, proto_out)
            reply = Reply(request.id, engine.classify([clean_text(t) for t in request.texts]))
        proto_out.write(encode(reply))
        proto_out.flush()


def _guess_id(line: bytes) -> int | None:
    try:
        value = orjson.loads(line).get("id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def one_shot(engine_factory: Callable[[], Engine], data: bytes, out: IO[bytes]) -> int:
    """Classify all of `data` as one text and print one JSON object; return the exit code."""
    text = data.decode("utf-8", "replace").strip()
    if is_blank(text):
        _print_json(
            out, {"error": {"type": "EmptyText", "message": "no text to classify: stdin was empty"}}
        )
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
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS)
    parser.add_argument(
        "--quantize",
        default=os.environ.get("VOLFEFE_QUANTIZE") or "none",
        choices=["none", "int8"],
        help="int8: dynamic int8 quantisation of the Linear layers (CPU)",
    )
    parser.add_argument(
        "--batch-tokens",
        type=int,
        default=DEFAULT_BATCH_TOKENS,
        help="padded tokens per forward pass",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point: returns the process exit code."""
    args = parse_args(argv)
    spec = os.environ.get("VOLFEFE_WORKER_FAULT", "")
    fault = Fault(spec, os.environ.get("VOLFEFE_WORKER_FAULT_ONCE", "")) if spec else None
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
        engine = load_engine(args)
    except ModelLoadError as exc:
        print(f"volfefe worker: {exc}", file=sys.stderr)
        if not args.serve:
            _print_json(proto_out, {"error": {"type": "ModelLoadError", "message": str(exc)}})
        return EXIT_BOOT_FAILED
    serve(engine, sys.stdin.buffer, proto_out, fault)
    return 0


if __name__ == "__main__":
    sys.exit(main())
