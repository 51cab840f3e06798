"""The torch backend: a transformers model, optionally with dynamic int8 Linear layers."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from volfefe.child.engine import (
    Engine,
    ModelLoadError,
    model_version_of,
    plain_tokenizer,
    resolve_labels,
)
from volfefe.child.hub import HUB_TIMEOUT, local_only
from volfefe.protocol import Ready

MAX_LENGTH = 512


def load_hf(
    model: str, revision: str | None, hub_timeout: float = HUB_TIMEOUT, **model_options: Any
) -> tuple[Any, Any]:
    """Load tokenizer and model with transformers (`trust_remote_code=False`), or
    ModelLoadError; a hub id whose hub does not answer within `hub_timeout` loads from the
    cache, or fails at once with ModelUnavailable (volfefe.child.hub)."""
    if model.startswith(("/", "./", "../", "~")) and not Path(model).expanduser().is_dir():
        raise ModelLoadError(f"model folder {model!r} does not exist")
    if not Path(model).is_dir() and local_only(model, revision, hub_timeout):
        model_options["local_files_only"] = True
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    transformers.utils.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    if Path(model).is_dir() and any(Path(model).glob("*.safetensors")):
        model_options.setdefault("use_safetensors", True)  # never unpickle a .bin beside it
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model,
            revision=revision,
            trust_remote_code=False,
            local_files_only=model_options.get("local_files_only", False),
        )
        hf_model = AutoModelForSequenceClassification.from_pretrained(
            model, revision=revision, trust_remote_code=False, **model_options
        )
    except (OSError, ValueError) as exc:
        hint = ""
        if not Path(model).is_dir():
            hint = (
                " (is the model hub reachable? Without network, set VOLFEFE_MODEL or "
                "--model to a local folder holding the model)"
            )
        raise ModelLoadError(f"cannot load model {model!r}: {exc}{hint}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"model {model!r} has no fast tokenizer")
    hf_model.eval()
    return tokenizer, hf_model


def max_length_of(tokenizer: Any, model: Any) -> int:
    """The longest input the model takes, capped at 512."""
    return min(
        int(getattr(model.config, "max_position_embeddings", MAX_LENGTH)),
        int(tokenizer.model_max_length or MAX_LENGTH),
        MAX_LENGTH,
    )


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantisation of every Linear layer (weights int8, activations per batch)."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # deprecated in favour of torchao, still the CPU fast path
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)  # type: ignore[no-untyped-call]


def pick_device(wanted: str) -> str:
    """`auto` means cuda when present, then mps, else cpu; a device that is not there is a
    ModelLoadError (the child exits with status 3: a configuration error, not a crash loop)."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    present = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": mps is not None and mps.is_available(),
    }
    if wanted == "auto":
        return "cuda" if present["cuda"] else "mps" if present["mps"] else "cpu"
    if not present.get(wanted, False):
        raise ModelLoadError(
            f"device {wanted!r} is not available in this torch build or on this machine "
            "(use --device auto or cpu)"
        )
    return wanted


def load_engine(
    model: str,
    revision: str | None,
    *,
    threads: int,
    device: str,
    quantize: str,
    max_chars: int,
    forward_tokens: int,
    digest_cache: Path | None = None,
    hub_timeout: float = HUB_TIMEOUT,
) -> Engine:
    """Import torch/transformers, load the model and map its labels (ModelLoadError)."""
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set only when embedded in a process
        torch.set_num_interop_threads(1)
    device = pick_device(device)  # before the model loads: a wrong device fails fast
    tokenizer, hf_model = load_hf(model, revision, hub_timeout)
    labels = resolve_labels({int(k): v for k, v in hf_model.config.id2label.items()})
    try:
        hf_model.to(device)
    except (RuntimeError, AssertionError) as exc:  # e.g. a driver that cannot take the model
        raise ModelLoadError(f"cannot move the model to {device!r}: {exc}") from exc
    if quantize == "int8":
        hf_model = quantize_int8(hf_model)
    if quantize not in ("none", "int8"):
        raise ModelLoadError(f"the torch backend has no {quantize!r} quantisation (openvino has)")
    version = model_version_of(
        model, revision, getattr(hf_model.config, "_commit_hash", None), digest_cache
    )
    if quantize == "int8":
        version += "+int8"  # other numerics: never mixed up with fp32 results

    def predict(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = hf_model(
                input_ids=torch.from_numpy(input_ids).to(device),
                attention_mask=torch.from_numpy(attention_mask).to(device),
                token_type_ids=torch.zeros_like(torch.from_numpy(input_ids)).to(device),
            ).logits
        result: np.ndarray = logits.float().cpu().numpy()
        return result

    max_length = max_length_of(tokenizer, hf_model)
    ready = Ready(
        model=model,
        model_version=version,
        labels=labels,
        device=device,
        threads=torch.get_num_threads(),
        pid=os.getpid(),
        max_length=max_length,
    )
    return Engine(
        predict=predict,
        tokenizer=plain_tokenizer(tokenizer.backend_tokenizer),
        pad_id=int(tokenizer.pad_token_id or 0),
        labels=labels,
        max_length=max_length,
        max_chars=max_chars,
        forward_tokens=forward_tokens,
        ready=ready,
    )
