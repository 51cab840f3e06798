"""The ONNX Runtime backend: loads an exported folder; imports onnxruntime, tokenizers, numpy.

The folder (made by volfefe.child.export) holds `model.onnx`, `tokenizer.json` and
`volfefe-onnx.json` (labels, max length, pad id, model_version).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from volfefe.child.engine import Engine, ModelLoadError, export_engine, missing_runtime

META_FILE = "volfefe-onnx.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"


_shared = False  # share_one_runtime() was called: every session uses its pool and arena


def share_one_runtime(threads: int) -> None:
    """From now on, every session of this process runs on one pool of `threads` threads and
    allocates from one memory arena.

    For a process that runs several sessions one after the other (the preempting child: one
    session per stage of the layered export) and nothing else of onnxruntime. The pool: a
    stage starts on threads still spinning from the previous one, where per-session pools
    would each spin and take the cores from the next stage's (or, not spinning, pay a
    wake-up per operator). The arena: with one per session, each stage computes in buffers
    of its own that the other stages have pushed out of the caches; on one arena they reuse
    the buffers the previous stage left there (a long post's idle p50 149 -> 131 ms, the
    job drain 1.10x: docs/deploying.md, comparison shared-arena-2026-12-06).
    Call it before the process's first session; onnxruntime then refuses any session that
    asks for threads of its own, which is why only the child's `main` calls it.
    """
    global _shared
    try:
        import onnxruntime as ort
        from onnxruntime.capi import _pybind_state
    except ImportError as exc:
        raise missing_runtime("onnx", exc) from exc
    _pybind_state.set_global_thread_pool_sizes(threads, 1)
    memory = ort.OrtMemoryInfo(
        "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
    )
    ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, -1, -1, -1))
    _shared = True


def open_sessions(paths: list[Path], *, threads: int) -> list[Any]:
    """ONNX Runtime sessions of `paths` on the CPU, `threads` intra-op threads (the
    runtime's ImportError as ModelLoadError; its own errors pass through).

    On the process's one pool and arena after `share_one_runtime`. Else each session has its own
    threads, and with several sessions (the layered export, one per stage) they do not spin
    once a run ends: left spinning (onnxruntime's default), a stage's threads take the cores
    from the next stage's.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise missing_runtime("onnx", exc) from exc
    options = ort.SessionOptions()
    if _shared:
        options.use_per_session_threads = False
        options.log_severity_level = 3  # not the warning that the pool's sizes are its own
        options.add_session_config_entry("session.use_env_allocators", "1")
    else:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        if len(paths) > 1:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return [
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for path in paths
    ]


def load_engine(folder: Path, *, threads: int, max_chars: int, forward_tokens: int) -> Engine:
    """Open an exported model with ONNX Runtime on the CPU (ModelLoadError when unusable)."""
    from tokenizers import Tokenizer

    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        [session] = open_sessions([folder / MODEL_FILE], threads=threads)
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    except ModelLoadError:
        raise  # the runtime is missing: say that, not "cannot load"
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
