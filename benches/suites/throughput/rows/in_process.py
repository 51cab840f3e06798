"""In-process rows: pipeline, pipeline_b16 and ceiling on torch, ceiling_onnx(_int8) on ONNX
Runtime, and the bare single-text forward the pool's latency is compared with."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..results import Context, Plan, Results, timed_row

IN_PROCESS = ("pipeline", "pipeline_b16", "ceiling")
CEILING_BATCH_TOKENS = 1024
PIPELINE_BATCH = 16
MAX_LENGTH = 512


@dataclasses.dataclass
class InProcess:
    """The transformers pipeline and its model and tokenizer, loaded in this process."""

    pipeline: Any
    model: Any
    tokenizer: Any


def load_in_process(plan: Plan) -> InProcess:
    """Load the model with transformers' pipeline, with as many torch threads as cores."""
    import torch
    import transformers

    torch.set_num_threads(plan.cores)
    transformers.utils.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    classifier: Any = transformers.pipeline(
        "text-classification", model=str(plan.model), truncation=True, device="cpu"
    )
    classifier.model.eval()
    return InProcess(classifier, classifier.model, classifier.tokenizer)


def bench_in_process(plan: Plan, texts: list[str], results: Results, bare: InProcess) -> None:
    """The transformers pipeline (one text per call, then batch_size=16) and the bare ceiling."""

    def one_by_one() -> dict[str, Any]:
        for text in texts:
            bare.pipeline(text)
        return {}

    def batched() -> dict[str, Any]:
        out = bare.pipeline(texts, batch_size=PIPELINE_BATCH)
        assert len(out) == len(texts)
        return {"batch_size": PIPELINE_BATCH}

    def ceiling() -> dict[str, Any]:
        forwards = ceiling_loop(bare.model, bare.tokenizer, texts, CEILING_BATCH_TOKENS)
        return {"forward_passes": forwards, "batch_tokens": CEILING_BATCH_TOKENS}

    timed_row(results, "pipeline", len(texts), one_by_one)
    timed_row(results, "pipeline_b16", len(texts), batched)
    timed_row(results, "ceiling", len(texts), ceiling)


def in_process_rows(ctx: Context) -> None:
    """Load the model in this process (kept in `ctx.bare` for the latency comparison) and
    time the in-process rows; a failure to load fails every row that needs the model."""
    bare = load_in_process(ctx.plan)
    bare.pipeline(ctx.texts[0])  # warm-up: first-call allocations are not throughput
    ctx.bare = bare
    bench_in_process(ctx.plan, ctx.texts, ctx.results, bare)


def ceiling_loop(model: Any, tokenizer: Any, texts: Sequence[str], budget: int) -> int:
    """Tokenise, sort by length, forward batches of <= `budget` padded tokens; the pass count."""
    import torch

    encoded: list[list[int]] = tokenizer(list(texts), truncation=True, max_length=MAX_LENGTH)[
        "input_ids"
    ]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    batches: list[list[int]] = []
    for index in order:  # sorted, so the newest row is the longest of its batch
        if batches and (len(batches[-1]) + 1) * len(encoded[index]) <= budget:
            batches[-1].append(index)
        else:
            batches.append([index])
    with torch.inference_mode():
        for batch in batches:
            padded = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt")
            logits = model(
                input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]
            ).logits
            torch.softmax(logits.float(), dim=-1).tolist()
    return len(batches)


def single_forward(model: Any, tokenizer: Any, text: str) -> list[float]:
    """Tokenise one text and run it through the model: what one pool request computes."""
    import torch

    with torch.inference_mode():
        inputs = tokenizer(text, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        logits = model(**inputs).logits
        probs: list[float] = torch.softmax(logits.float(), dim=-1)[0].tolist()
    return probs


def bench_onnx_ceiling(ctx: Context, quantize: str) -> None:
    """The bare in-process loop on ONNX Runtime: the exported model, no pool, no pipes."""
    from volfefe.child.backends.onnx_backend import load_engine
    from volfefe.child.export import ensure_export

    plan, texts, results = ctx.plan, ctx.texts, ctx.results
    cache = Path(os.environ["VOLFEFE_EXPORT_CACHE"])
    folder = ensure_export(cache, str(plan.model), None, quantize)
    engine = load_engine(
        folder, threads=plan.cores, max_chars=20_000, forward_tokens=CEILING_BATCH_TOKENS
    )
    engine.classify(texts[:4])  # warm-up
    row = "ceiling_onnx" if quantize == "none" else "ceiling_onnx_int8"
    timed_row(
        results,
        row,
        len(texts),
        lambda: {"n": len(engine.classify(texts)), "batch_tokens": CEILING_BATCH_TOKENS},
    )
