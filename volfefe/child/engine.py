"""Backend-neutral inference in the child: text in, sentiment out.

```
texts ──blank? -> EmptyText──cut to max_chars──tokenize (tokenizers, no torch)──truncate to
max_length──sort by length──forward passes of <= forward_tokens padded tokens──softmax──labels
```

The texts of a call are cut into passes at the least cost (`cut_passes`): on a CPU a pass
costs about its padded tokens (rows x its longest text) plus a little per pass, so a short
text padded to a longer one's length pays the longer one's price; a batch of unlike lengths
is cut where padding would cost more than another pass.

A backend supplies only `predict(input_ids, attention_mask) -> logits` (numpy arrays), so
torch and ONNX Runtime give the same pre- and post-processing. Imports numpy, tokenizers and
volfefe.protocol only: the ONNX child never imports torch.
"""

from __future__ import annotations

import hashlib
import math
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from volfefe.child.digest import file_digest
from volfefe.protocol import (
    BAD_SCORES,
    EMPTY_TEXT,
    FINBERT_ORDER,
    FORWARD_FAILED,
    SENTIMENTS,
    ItemError,
    ItemResult,
    Ready,
    is_blank,
)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt", ".pth")
Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]
_Item = tuple[int, list[int], bool]  # (index in the request, token ids, truncated)
# One-row shapes prepared at start: most short posts, padded (see Engine.single_pad).
WARM_UP_LENGTHS = (16, 32, 48, 64, 80, 96, 112, 128)
# What a forward pass costs beyond its padded tokens, in tokens' worth of compute: the fit of
# `python -m benches run shapes --row onnx_int8 --passes 15` (2 cores, FinBERT-sized: 5.8 ms
# a pass and 0.32 ms a token; benches/results/amd-epyc/shapes-2026-12-06T130936Z.json).
PASS_COST_TOKENS = 18


class ModelLoadError(Exception):
    """The model cannot be loaded or its labels cannot be mapped to sentiments."""


def missing_runtime(backend: str, exc: ImportError) -> ModelLoadError:
    """The ModelLoadError of a backend whose runtime cannot be imported (exit 3: restarting
    the child cannot help).

    >>> str(missing_runtime("onnx", ModuleNotFoundError("gone", name="onnxruntime")))[:58]
    'the onnx backend needs the onnx extra (onnxruntime: gone):'
    """
    return ModelLoadError(
        f"the {backend} backend needs the {backend} extra ({exc.name or 'its runtime'}: {exc}): "
        f"pip install 'volfefe[{backend}]', or set VOLFEFE_BACKEND=torch"
    )


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


def model_version_of(
    model: str, revision: str | None, commit: str | None, digest_cache: Path | None = None
) -> str:
    """Identify model and revision: `hub/id@commit` or, for a folder, `name@content-hash`.

    The content hash covers the whole of every weights file (digests cached in
    `digest_cache` by size and mtime, so a second start-up does not read 440 MB again) and
    every small config, tokenizer and vocabulary file.
    """
    path = Path(model)
    if not path.is_dir():
        return f"{model}@{(commit or revision or 'main')[:12]}"
    digest = hashlib.sha256()
    for file in sorted(path.iterdir()):
        if file.suffix in (".json", ".txt") and file.stat().st_size < 10_000_000:
            digest.update(file.name.encode() + file.read_bytes())
        elif file.suffix in WEIGHT_SUFFIXES and file.is_file():
            digest.update(f"{file.name}:{file_digest(file, digest_cache)}".encode())
    return f"{path.resolve().name}@{digest.hexdigest()[:12]}"


@dataclass
class Engine:
    """A tokenizer and a backend's `predict` that classify batches of texts."""

    predict: Predict
    tokenizer: Any  # tokenizers.Tokenizer, without truncation or padding
    pad_id: int
    labels: list[str]
    max_length: int
    max_chars: int
    forward_tokens: int
    ready: Ready
    # A one-row pass is padded up to a multiple of this, so lone posts reuse a few shapes:
    # OpenVINO prepares every new input shape once, which costs more than the pass itself.
    single_pad: int = 1
    # What one more pass costs, in padded tokens (`cut_passes`).
    pass_cost: int = PASS_COST_TOKENS

    def classify(self, texts: list[str]) -> list[ItemResult | ItemError]:
        """Classify `texts`; a blank text, a failed forward pass (ForwardPassFailed) or NaN
        scores (BadScores) give an ItemError for the texts concerned instead."""
        results: list[ItemResult | ItemError | None] = [None] * len(texts)
        todo: list[_Item] = []
        for i, text in enumerate(texts):
            if is_blank(text):
                results[i] = ItemError(EMPTY_TEXT, "the text is empty or whitespace only")
        kept = [i for i in range(len(texts)) if results[i] is None]
        cut = [texts[i][: self.max_chars] for i in kept]
        for i, encoding in zip(kept, self.tokenizer.encode_batch(cut), strict=True):
            ids = list(encoding.ids)
            truncated = len(texts[i]) > self.max_chars or len(ids) > self.max_length
            if len(ids) > self.max_length:  # keep the closing special token ([SEP])
                ids = ids[: self.max_length - 1] + ids[-1:]
            todo.append((i, ids, truncated))
        todo.sort(key=lambda item: len(item[1]))
        for batch in cut_passes(todo, self.forward_tokens, self.pass_cost):
            try:
                probs = self._forward([ids for _, ids, _ in batch])
            except Exception as exc:  # one failed forward pass must not end the child
                message = f"{type(exc).__name__}: {exc}"
                error = ItemError(FORWARD_FAILED, message, traceback.format_exc())
                for index, _, _ in batch:
                    results[index] = error
                continue
            for (index, ids, truncated), row in zip(batch, probs, strict=True):
                if all(math.isfinite(p) for p in row):
                    results[index] = self._result(row, truncated, len(ids))
                else:  # NaN would reach the wire as null and garble the reply
                    results[index] = ItemError(
                        BAD_SCORES, f"the model gave non-finite scores for this text: {row}"
                    )
        return [r for r in results if r is not None]

    def _forward(self, batch: list[list[int]]) -> list[list[float]]:
        longest = max(len(ids) for ids in batch)
        if len(batch) == 1:
            longest = min(-(-longest // self.single_pad) * self.single_pad, self.max_length)
        input_ids = np.full((len(batch), longest), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), longest), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        logits = np.asarray(self.predict(input_ids, mask), dtype=np.float64)
        with np.errstate(invalid="ignore"):  # NaN rows are reported per item, not warned about
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs: list[list[float]] = (shifted / shifted.sum(axis=1, keepdims=True)).tolist()
        return probs

    def warm_up(self, lengths: tuple[int, ...] = WARM_UP_LENGTHS) -> None:
        """Run one forward pass per length (one row each) before the first request.

        A runtime's first pass allocates and prepares its kernels, and OpenVINO prepares
        each new input shape once: without this, the first posts after a (re)start would
        pay for it. A model that fails here cannot serve: ModelLoadError."""
        for length in lengths:
            if length <= self.max_length:
                try:
                    self._forward([[self.pad_id] * length])
                except Exception as exc:
                    raise ModelLoadError(f"the model fails a warm-up pass: {exc}") from exc

    def _result(self, row: list[float], truncated: bool, tokens: int) -> ItemResult:
        scores = {label: round(p, 6) for label, p in zip(self.labels, row, strict=True)}
        best = max(range(len(row)), key=row.__getitem__)
        return ItemResult(self.labels[best], round(row[best], 6), scores, truncated, tokens)


def cut_passes(items: list[_Item], budget: int, pass_cost: int) -> list[list[_Item]]:
    """Cut length-sorted items into forward passes at the least cost, each pass costing its
    padded tokens (rows x longest) plus `pass_cost` and keeping within `budget` padded
    tokens (an item over it on its own makes a pass of one).

    >>> def lengths(sizes, budget=1024, pass_cost=8):
    ...     items = [(i, [1] * n, False) for i, n in enumerate(sizes)]
    ...     return [[len(ids) for _, ids, _ in p] for p in cut_passes(items, budget, pass_cost)]
    >>> lengths([10, 11, 12, 60])  # padding three texts to 60 tokens costs more than a pass
    [[10, 11, 12], [60]]
    >>> lengths([10, 11, 12, 60], pass_cost=1000)  # passes dearer than padding: one pass
    [[10, 11, 12, 60]]
    >>> lengths([4] * 5, budget=8)  # the budget: at most 2 rows of 4
    [[4, 4], [4, 4], [4]]
    """
    # least[end]: the least cost of items[:end]; start[end]: where its last pass starts.
    least = [0.0] + [math.inf] * len(items)
    start = [0] * (len(items) + 1)
    for end in range(1, len(items) + 1):
        longest = len(items[end - 1][1])
        for first in range(end - 1, -1, -1):
            rows = end - first
            if rows > 1 and rows * longest > budget:
                break
            cost = least[first] + rows * longest + pass_cost
            if cost < least[end]:
                least[end], start[end] = cost, first
    passes: list[list[_Item]] = []
    end = len(items)
    while end:
        passes.append(items[start[end] : end])
        end = start[end]
    return passes[::-1]


def plain_tokenizer(tokenizer: Any) -> Any:
    """The tokenizers.Tokenizer with truncation and padding off (we truncate and pad)."""
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def export_engine(
    meta: dict[str, Any],
    predict: Predict,
    tokenizer: Any,
    *,
    threads: int,
    max_chars: int,
    forward_tokens: int,
    single_pad: int = 1,
    pass_cost: int = PASS_COST_TOKENS,
) -> Engine:
    """The engine of an exported model (onnx, openvino): its recorded `meta` (model,
    model_version, labels, max_length, pad_id), its runtime's `predict` and its tokenizer."""
    ready = Ready(
        model=str(meta["model"]),
        model_version=str(meta["model_version"]),
        labels=list(meta["labels"]),
        device="cpu",
        threads=threads,
        pid=os.getpid(),
        max_length=int(meta["max_length"]),
    )
    return Engine(
        predict=predict,
        tokenizer=plain_tokenizer(tokenizer),
        pad_id=int(meta["pad_id"]),
        labels=list(meta["labels"]),
        max_length=int(meta["max_length"]),
        max_chars=max_chars,
        forward_tokens=forward_tokens,
        ready=ready,
        single_pad=single_pad,
        pass_cost=pass_cost,
    )
