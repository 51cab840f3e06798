"""The OpenVINO export recipe: torch model -> OpenVINO IR, optionally quantised with NNCF.

```
transformers model ──ov.convert_model (torch frontend)──> fp32 IR
  none:             save
  int8:             nncf.compress_weights (weights only) -> save
  int8-static:      calibration texts, tokenised like the child -> nncf.quantize (weights
                    and activations) -> held-out texts: fp32 vs int8 (guard.compare)
                    -> refuse (GuardRefused) or save
  bf16:             held-out texts: fp32 vs the same IR run at bf16 -> refuse or save
  int8-static-bf16: as int8-static, the candidate run at bf16
```

Needs torch, transformers and the `openvino` extra (openvino, nncf) at export time only; the
child that loads the result imports openvino alone. Weights are saved in fp32
(`compress_to_fp16=False`), so `+openvino` matches torch to about 1e-5; the precision a
scheme runs at is recorded (`precision`) and the child compiles with it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from volfefe.child.backends.openvino_backend import (
    MODEL_FILE,
    TOKENIZER_FILE,
    compile_model,
    has_bf16,
    precision_of,
    predictor,
)
from volfefe.child.calibration import MIN_TEXTS, split_holdout, stratified_sample
from volfefe.child.engine import (
    Engine,
    ModelLoadError,
    model_version_of,
    plain_tokenizer,
    resolve_labels,
)
from volfefe.child.guard import GuardFigures, compare
from volfefe.protocol import (
    DEFAULT_FORWARD_TOKENS,
    DEFAULT_MAX_CHARS,
    GUARDED_SCHEMES,
    STATIC_SCHEMES,
    ItemResult,
    Ready,
)

SCHEME_SUFFIX = {
    "none": "+openvino",
    "int8": "+openvino-int8",
    "int8-static": "+openvino-int8-static",
    "bf16": "+openvino-bf16",
    "int8-static-bf16": "+openvino-int8-static-bf16",
}
GUARD_THREADS = 2


@dataclass(frozen=True)
class Calibration:
    """Texts to calibrate and check a guarded export (static int8, bf16), and the guard's
    thresholds (a bf16 export uses only the held-out part)."""

    texts: list[str]
    source: str  # said in the export's record: "sample", "file NAME", "database"
    size: int = 300  # calibration texts, at most
    guard_size: int = 100  # held-out texts, at most (never more than a third of the texts)
    seed: int = 0
    min_agreement: float = 0.97
    max_dp: float = 0.2


class NoBf16(ModelLoadError):
    """This CPU has no bf16 arithmetic, so a bf16 scheme cannot be run (the exporter exits
    with its own code, and `auto` then runs the scheme's f32 counterpart)."""


class GuardRefused(ModelLoadError):
    """The guarded model (static int8, bf16) strays too far from fp32 on the held-out texts
    (so it cannot be loaded: a child asked for it exits with the boot-failure code)."""

    def __init__(self, figures: GuardFigures, calibration: Calibration) -> None:
        super().__init__(
            f"refused: label agreement {figures.label_agreement:.3f} "
            f"(>= {calibration.min_agreement:g} needed), max |dp| {figures.max_abs_dp:.4f} "
            f"(<= {calibration.max_dp:g} allowed) on {figures.n} held-out texts"
        )
        self.figures = figures
        self.thresholds = {"min_agreement": calibration.min_agreement, "max_dp": calibration.max_dp}


def export_openvino(
    model: str,
    revision: str | None,
    quantize: str,
    out: Path,
    *,
    calibration: Calibration | None,
    digest_cache: Path | None,
) -> dict[str, Any]:
    """Export `model` into `out`; return the record to store next to it (see module doc)."""
    try:
        import openvino as ov
        import torch
    except ImportError as exc:
        raise ModelLoadError(
            f"exporting to OpenVINO needs the openvino extra ({exc.name} is missing): "
            "pip install 'volfefe[openvino]', or set VOLFEFE_BACKEND=onnx or torch"
        ) from exc
    from volfefe.child.backends.torch_backend import load_hf, max_length_of

    if precision_of(quantize) == "bf16":  # before the expensive conversion
        _require_bf16()
    tokenizer, hf_model = load_hf(model, revision, attn_implementation="eager")
    labels = resolve_labels({int(k): v for k, v in hf_model.config.id2label.items()})
    sample = tokenizer(
        ["stocks rally", "tariffs hit exporters hard"], padding=True, return_tensors="pt"
    )
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about constant shapes: not ours
        ov_model = ov.convert_model(hf_model, example_input={n: sample[n] for n in names})
    tokenizer.backend_tokenizer.save(str(out / TOKENIZER_FILE))
    max_length = max_length_of(tokenizer, hf_model)
    pad_id = int(tokenizer.pad_token_id or 0)
    base = model_version_of(
        model, revision, getattr(hf_model.config, "_commit_hash", None), digest_cache
    )
    meta: dict[str, Any] = {
        "model": model,
        "model_version": base + SCHEME_SUFFIX[quantize],
        "labels": labels,
        "max_length": max_length,
        "pad_id": pad_id,
        "quantize": quantize,
        "precision": precision_of(quantize),
    }
    if quantize == "int8":
        import nncf

        ov_model = nncf.compress_weights(ov_model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    elif quantize in GUARDED_SCHEMES:
        if calibration is None:
            raise ModelLoadError(f"{quantize} needs texts for the accuracy guard")
        ov_model, meta["calibration"], meta["guard"] = _guarded(
            ov_model, quantize, calibration, out / TOKENIZER_FILE, labels, max_length, pad_id
        )
    ov.save_model(ov_model, str(out / MODEL_FILE), compress_to_fp16=False)
    return meta


def _require_bf16() -> None:
    if not has_bf16():
        raise NoBf16(
            "this CPU has no bf16 arithmetic (OpenVINO reports no BF16 capability): "
            "use none or int8-static instead"
        )


def _guarded(
    ov_model: Any,
    quantize: str,
    calibration: Calibration,
    tokenizer_file: Path,
    labels: list[str],
    max_length: int,
    pad_id: int,
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The model to install for a guarded scheme, its calibration record and guard figures
    (GuardRefused when the candidate strays too far from fp32 on the held-out texts)."""
    pool = stratified_sample(
        calibration.texts, calibration.size + calibration.guard_size, calibration.seed
    )
    if len(pool) < MIN_TEXTS:
        raise ModelLoadError(
            f"{quantize} needs at least {MIN_TEXTS} distinct texts to calibrate and check, "
            f"got {len(pool)}"
        )
    held_out = min(calibration.guard_size, len(pool) // 3)
    calib, held = split_holdout(pool, held_out, calibration.seed)
    engine = _engine(
        compile_model(ov_model, GUARD_THREADS), tokenizer_file, labels, max_length, pad_id
    )
    reference = _probabilities(engine, held)
    candidate_model = ov_model
    if quantize in STATIC_SCHEMES:
        candidate_model = _quantize_static(ov_model, engine, calib, max_length)
    candidate = _engine(
        compile_model(candidate_model, GUARD_THREADS, precision_of(quantize)),
        tokenizer_file,
        labels,
        max_length,
        pad_id,
    )
    figures = compare(reference, _probabilities(candidate, held))
    if not figures.passes(min_agreement=calibration.min_agreement, max_dp=calibration.max_dp):
        raise GuardRefused(figures, calibration)
    calibrated = len(calib) if quantize in STATIC_SCHEMES else 0
    record = {"source": calibration.source, "texts": calibrated, "seed": calibration.seed}
    guard = {
        **figures.as_dict(),
        "min_agreement": calibration.min_agreement,
        "max_dp": calibration.max_dp,
    }
    return candidate_model, record, guard


def _quantize_static(ov_model: Any, engine: Engine, calib: list[str], max_length: int) -> Any:
    """NNCF's static int8 of `ov_model`, calibrated on `calib` tokenised as the child does."""
    import nncf
    import numpy as np

    def feeds(text: str) -> dict[str, Any]:
        ids = engine.tokenizer.encode(text[: engine.max_chars]).ids
        if len(ids) > max_length:
            ids = ids[: max_length - 1] + ids[-1:]
        row = np.asarray([ids], dtype=np.int64)
        return {
            "input_ids": row,
            "attention_mask": np.ones_like(row),
            "token_type_ids": np.zeros_like(row),
        }

    inputs = {i.get_any_name() for i in ov_model.inputs}
    items = [{k: v for k, v in feeds(t).items() if k in inputs} for t in calib]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = nncf.quantize(
            ov_model,
            nncf.Dataset(items),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(items),
        )
    return quantized


def _engine(
    compiled: Any, tokenizer_file: Path, labels: list[str], max_length: int, pad_id: int
) -> Engine:
    from tokenizers import Tokenizer

    ready = Ready(
        model="",
        model_version="",
        labels=labels,
        device="cpu",
        threads=1,
        pid=0,
        max_length=max_length,
    )
    return Engine(
        predict=predictor(compiled),
        tokenizer=plain_tokenizer(Tokenizer.from_file(str(tokenizer_file))),
        pad_id=pad_id,
        labels=labels,
        max_length=max_length,
        max_chars=DEFAULT_MAX_CHARS,
        forward_tokens=DEFAULT_FORWARD_TOKENS,
        ready=ready,
    )


def _probabilities(engine: Engine, texts: list[str]) -> list[list[float]]:
    rows: list[list[float]] = []
    for item in engine.classify(texts):
        if not isinstance(item, ItemResult):
            raise ModelLoadError(f"the accuracy guard could not classify a text: {item.message}")
        rows.append([item.raw_scores[label] for label in engine.labels])
    return rows
