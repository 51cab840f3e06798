"""The OpenVINO backend: loads an exported IR folder; imports openvino, tokenizers, numpy.

The folder (made by volfefe.child.export_openvino) holds `model.xml` + `model.bin`,
`tokenizer.json` and `volfefe-openvino.json` (labels, max length, pad id, model_version,
quantisation, precision and, for a guarded scheme, the accuracy guard's figures). Inference
runs at the recorded precision: f32 (`INFERENCE_PRECISION_HINT=f32`) unless the scheme is
bf16 or int8-static-bf16, whose export the guard checked against fp32; OpenVINO would
otherwise pick bf16 by itself on CPUs that have it, unchecked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from volfefe.child.engine import Engine, ModelLoadError, export_engine, missing_runtime

META_FILE = "volfefe-openvino.json"
MODEL_FILE = "model.xml"
WEIGHTS_FILE = "model.bin"
TOKENIZER_FILE = "tokenizer.json"


SINGLE_PAD = 16  # a lone text's pass is padded to a multiple of 16 tokens (Engine.single_pad)
# Each new input shape is prepared once, at more than a pass costs: as few passes (so shapes)
# as the budget allows, padding or not (Engine.pass_cost).
PASS_COST = 1 << 20


def precision_of(scheme: str) -> str:
    """The inference precision a scheme runs at: `bf16` for the bf16 schemes, else `f32`.

    >>> precision_of("int8-static-bf16"), precision_of("int8-static")
    ('bf16', 'f32')
    """
    return "bf16" if scheme.endswith("bf16") else "f32"


def has_bf16() -> bool:
    """Whether OpenVINO runs bf16 arithmetic on this CPU."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def compile_model(model: Any, threads: int, precision: str = "f32") -> Any:
    """Compile an `openvino.Model` (or an IR path) for the CPU at `precision` (f32, bf16).

    Latency hint: a request is one batch, run on all of this child's threads. Threads are
    not pinned to cores: OpenVINO pins by default, and every process pins to the same first
    cores, so two children of one thread each (or a `serve` beside a `jobs worker`) would
    share one core and leave the other idle (tests/integration/test_openvino.py)."""
    import openvino as ov

    config = {
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": precision,
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "ENABLE_CPU_PINNING": False,
    }
    return ov.Core().compile_model(model, "CPU", config)


def predictor(compiled: Any) -> Any:
    """`predict(input_ids, attention_mask) -> logits` over a compiled model."""
    names = {i.get_any_name() for i in compiled.inputs}
    request = compiled.create_infer_request()

    def predict(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        logits: np.ndarray = np.array(request.infer(feeds)[0], copy=True)
        return logits

    return predict


def load_engine(folder: Path, *, threads: int, max_chars: int, forward_tokens: int) -> Engine:
    """Open an exported IR with OpenVINO on the CPU (ModelLoadError when unusable)."""
    try:
        import openvino  # noqa: F401 - compile_model imports it; say clearly when it is missing
    except ImportError as exc:
        raise missing_runtime("openvino", exc) from exc
    from tokenizers import Tokenizer

    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        precision = str(meta.get("precision", "f32"))
        if precision == "bf16" and not has_bf16():
            print(  # stderr: the export came from another CPU; OpenVINO may run it at f32
                f"volfefe worker: {folder.name} was exported for bf16 arithmetic, which this "
                "CPU lacks; its results may differ from the guarded ones",
                file=sys.stderr,
            )
        compiled = compile_model(str(folder / MODEL_FILE), threads, precision)
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    except Exception as exc:  # openvino raises RuntimeError subclasses of its own
        raise ModelLoadError(f"cannot load the OpenVINO export in {folder}: {exc}") from exc
    return export_engine(
        meta,
        predictor(compiled),
        tokenizer,
        threads=threads,
        max_chars=max_chars,
        forward_tokens=forward_tokens,
        single_pad=SINGLE_PAD,
        pass_cost=PASS_COST,
    )
