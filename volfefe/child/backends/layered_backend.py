"""The layered ONNX Runtime backend: one session per stage, with a pause point between stages.

The folder (made by volfefe.child.export) holds the stage graphs, the one-graph model,
`tokenizer.json` and `volfefe-onnx-layered.json`. A forward pass that may be paused runs
embeddings, each encoder layer, then the head, and calls `StagedPredict.between` after every
stage but the last: the child's scheduler (volfefe.child.preempt) answers shorter requests
there, whole, before the paused pass resumes from its hidden state. A pass nobody pauses (one
run at a pause, or one of short texts, which a pause would not help: a short pass is shorter
than one layer of a long one) runs the one-graph model, which spares it the stages' per-graph
cost. Imports onnxruntime, tokenizers and numpy; never torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from volfefe.child.backends.onnx_backend import TOKENIZER_FILE, open_sessions
from volfefe.child.engine import Engine, ModelLoadError, export_engine
from volfefe.child.export_layered import META_FILE


def no_pause() -> None:
    """The pause point of a pass nobody preempts (such a pass runs the one-graph model)."""


class StagedPredict:
    """`predict(input_ids, attention_mask) -> logits` through the stage sessions in order,
    calling `between()` after each stage but the last (reentrant: `between` may run whole
    passes of its own); through `whole`, the one-graph session, when `between` does nothing
    or the pass's texts have at most `short_tokens` tokens."""

    def __init__(self, sessions: list[Any], whole: Any = None, short_tokens: int = 0) -> None:
        if len(sessions) < 2:
            raise ValueError("a layered model has at least an embeddings and a head stage")
        self.sessions = sessions
        self.whole = whole
        self.short_tokens = short_tokens
        self.between: Callable[[], None] = no_pause

    @property
    def stages(self) -> int:
        """How many graphs one pass runs."""
        return len(self.sessions)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """The logits of one padded batch (every intermediate is this call's own)."""
        token_type_ids = np.zeros_like(input_ids)
        if self.whole is not None and (
            self.between is no_pause or input_ids.shape[1] <= self.short_tokens
        ):
            feeds = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            whole: np.ndarray = self.whole.run(["logits"], feeds)[0]
            return whole
        first, *layers, head = self.sessions
        hidden = first.run(None, {"input_ids": input_ids, "token_type_ids": token_type_ids})[0]
        for layer in layers:
            self.between()
            hidden = layer.run(None, {"hidden": hidden, "attention_mask": attention_mask})[0]
        self.between()
        logits: np.ndarray = head.run(None, {"hidden": hidden})[0]
        return logits


def load_staged(
    folder: Path, *, threads: int, short_tokens: int = 0
) -> tuple[dict[str, Any], StagedPredict, Any]:
    """The record, the staged predict and the tokenizer of a layered export (ModelLoadError
    when unusable)."""
    from tokenizers import Tokenizer

    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        names = [*meta["stages"], meta["whole"]]
        *sessions, whole = open_sessions([folder / name for name in names], threads=threads)
        predict = StagedPredict(sessions, whole, short_tokens)
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    except ModelLoadError:
        raise  # the runtime is missing: say that, not "cannot load"
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError(f"cannot load the layered ONNX export in {folder}: {exc}") from exc
    return meta, predict, tokenizer


def load_engine(
    folder: Path, *, threads: int, max_chars: int, forward_tokens: int, short_tokens: int
) -> tuple[Engine, StagedPredict]:
    """The engine of a layered export and its staged predict (whose `between` the scheduler
    sets); ModelLoadError when unusable."""
    meta, predict, tokenizer = load_staged(folder, threads=threads, short_tokens=short_tokens)
    engine = export_engine(
        meta,
        predict,
        tokenizer,
        threads=threads,
        max_chars=max_chars,
        forward_tokens=forward_tokens,
    )
    return engine, predict


def warm_up(engine: Engine, staged: StagedPredict) -> None:
    """The engine's warm-up through the stage graphs (with a pause point that runs nothing),
    then through the one-graph model (ModelLoadError when a pass fails)."""
    staged.between = _pause_nothing
    try:
        engine.warm_up()
    finally:
        staged.between = no_pause
    engine.warm_up()


def _pause_nothing() -> None:
    """A pause point at which nothing runs (the stage graphs run, unlike with no_pause)."""
