"""The ONNX Runtime backend: loads an exported folder; imports onnxruntime, tokenizers, numpy.

The folder (made by volfefe.child.export) holds `model.onnx`, `tokenizer.json` and
`volfefe-onnx.json` (labels, max length, pad id, model_version).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from volfefe.child.engine import Engine, ModelLoadError, export_engine, missing_runtime

META_FILE = "volfefe-onnx.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"


def load_engine(folder: Path, *, threads: int, max_chars: int, forward_tokens: int) -> Engine:
    """Open an exported model with ONNX Runtime on the CPU (ModelLoadError when unusable)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise missing_runtime("onnx", exc) from exc
    from tokenizers import Tokenizer

    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError(f"cannot load the ONNX export in {folder}: {exc}") from exc
    inputs = {i.name for i in session.get_inputs()}

    def predict(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in inputs:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        logits: np.ndarray = session.run(["logits"], feeds)[0]
        return logits

    return export_engine(
        meta,
        predict,
        tokenizer,
        threads=threads,
        max_chars=max_chars,
        forward_tokens=forward_tokens,
    )
