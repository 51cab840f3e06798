"""Export a model to ONNX once and cache it: `python -m volfefe.child.export --model M ...`.

```
cache root (VOLFEFE_ONNX_CACHE, default next to the Hugging Face cache)
  <name>-<key>/            key = hash of model id or folder content, revision, quantisation
    model.onnx             torch export -> onnxruntime BERT fusion -> (int8: dynamic quantisation)
    tokenizer.json         the fast tokenizer, so the child needs no transformers
    volfefe-onnx.json      labels, max length, pad id, model_version, size and fingerprint
```

Written to a temporary folder and renamed into place under a file lock, so readers never see
half an export; a folder whose model file does not match its recorded size and fingerprint
is rebuilt. Needs torch, transformers and the `onnx` extra (onnx, onnxscript) at export
time only.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from volfefe.child.backends.onnx_backend import META_FILE, MODEL_FILE, TOKENIZER_FILE
from volfefe.child.engine import ModelLoadError, model_version_of, resolve_labels
from volfefe.protocol import EXIT_BOOT_FAILED

EXPORT_FORMAT = 1  # bump when the export recipe changes, so caches are rebuilt
OPSET = 17


def cache_folder(root: Path, model: str, revision: str | None, quantize: str) -> Path:
    """Where the export of this model, revision and quantisation lives under `root`."""
    identity = model_version_of(model, revision, None) if Path(model).is_dir() else model
    key = hashlib.sha256(
        json.dumps([EXPORT_FORMAT, identity, revision or "", quantize]).encode()
    ).hexdigest()[:16]
    name = Path(model).name if Path(model).is_dir() else model.replace("/", "--")
    return root / f"{name}-{quantize}-{key}"


def fingerprint(path: Path) -> str:
    """A cheap content check: size plus the first and last MiB."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with path.open("rb") as fh:
        digest.update(fh.read(1 << 20))
        fh.seek(max(0, size - (1 << 20)))
        digest.update(fh.read(1 << 20))
    return digest.hexdigest()


def is_complete(folder: Path) -> bool:
    """True when the folder holds an export whose model file matches its record."""
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        return bool(
            meta.get("format") == EXPORT_FORMAT
            and (folder / TOKENIZER_FILE).is_file()
            and fingerprint(folder / MODEL_FILE) == meta.get("fingerprint")
        )
    except (OSError, ValueError):
        return False


def ensure_export(root: Path, model: str, revision: str | None, quantize: str) -> Path:
    """The cached export, made (or rebuilt when incomplete or corrupt) if needed."""
    folder = cache_folder(root, model, revision, quantize)
    if is_complete(folder):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f".{folder.name}.lock"):
        if is_complete(folder):  # another process finished it while we waited
            return folder
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
        try:
            export(model, revision, quantize, tmp)
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def export(model: str, revision: str | None, quantize: str, out: Path) -> None:
    """Export `model` to `out` (see the module docstring); ModelLoadError when impossible."""
    try:
        import onnx  # noqa: F401 - the exporter needs it; say so clearly when missing
        import torch
        from onnxruntime.transformers import optimizer
    except ImportError as exc:
        raise ModelLoadError(
            f"exporting to ONNX needs the onnx extra ({exc.name} is missing): "
            "pip install 'volfefe[onnx]', or set VOLFEFE_BACKEND=torch"
        ) from exc
    from volfefe.child.backends.torch_backend import load_hf, max_length_of

    tokenizer, hf_model = load_hf(model, revision, attn_implementation="eager")
    labels = resolve_labels({int(k): v for k, v in hf_model.config.id2label.items()})
    raw = out / "raw.onnx"
    sample = tokenizer(
        ["stocks rally", "tariffs hit exporters hard"], padding=True, return_tensors="pt"
    )
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    # The legacy TorchScript exporter (deprecated, still supported) writes the graph that
    # onnxruntime's BERT fusion recognises; the torch.export-based one does not fuse attention.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            hf_model,
            tuple(sample[name] for name in names),
            str(raw),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    config = hf_model.config
    fused = optimizer.optimize_model(
        str(raw),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
    )
    fused.save_model_to_file(str(out / MODEL_FILE))
    raw.unlink()
    if quantize == "int8":
        _quantize(out / MODEL_FILE)
    tokenizer.backend_tokenizer.save(str(out / TOKENIZER_FILE))
    base = model_version_of(model, revision, getattr(config, "_commit_hash", None))
    meta: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "model": model,
        "model_version": f"{base}+onnx" + ("-int8" if quantize == "int8" else ""),
        "labels": labels,
        "max_length": max_length_of(tokenizer, hf_model),
        "pad_id": int(tokenizer.pad_token_id or 0),
        "quantize": quantize,
        "fused": {k: v for k, v in fused.get_fused_operator_statistics().items() if v},
        "fingerprint": fingerprint(out / MODEL_FILE),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _quantize(path: Path) -> None:
    """Dynamic per-tensor int8 quantisation of the fused graph's weights, in place."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = path.with_suffix(".int8.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(path),
            str(quantized),
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    quantized.replace(path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def main(argv: list[str] | None = None) -> int:
    """Export (or find) the model and print its folder; exit 3 when it cannot be exported."""
    parser = argparse.ArgumentParser(description="Export a model to ONNX for volfefe.")
    parser.add_argument("--model", required=True)
    parser.add_argument("--revision")
    parser.add_argument("--quantize", choices=["none", "int8"], default="none")
    parser.add_argument("--cache-root", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        folder = ensure_export(args.cache_root, args.model, args.revision, args.quantize)
    except ModelLoadError as exc:
        print(f"volfefe export: {exc}", file=sys.stderr)
        return EXIT_BOOT_FAILED
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
