"""The OpenVINO backend: loads an exported IR folder; imports openvino, tokenizers, numpy.

The folder (made by volfefe.child.export_openvino) holds `model.xml` + `model.bin`,
`tokenizer.json` and `volfefe-openvino.json` (labels, max length, pad id, model_version,
quantisation and, for int8-static, the accuracy guard's figures). Inference runs at fp32
precision (`INFERENCE_PRECISION_HINT=f32`): OpenVINO would otherwise pick bf16 on CPUs that
have it, and the results would no longer match the torch reference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from volfefe.child.engine import Engine, ModelLoadError, export_engine

META_FILE = "volfefe-openvino.json"
MODEL_FILE = "model.xml"
WEIGHTS_FILE = "model.bin"
TOKENIZER_FILE = "tokenizer.json"


def compile_model(model: Any, threads: int) -> Any:
    """Compile an `openvino.Model` (or an IR path) for the CPU with fp32 numerics.

    Latency hint: a request is one batch, run on all of this child's threads."""
    import openvino as ov

    config = {
        "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
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
    from tokenizers import Tokenizer

    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        compiled = compile_model(str(folder / MODEL_FILE), threads)
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
    )
