"""Export a model once and cache it: `python -m volfefe.child.export --model M ...`.

```
cache root (VOLFEFE_EXPORT_CACHE, default next to the Hugging Face cache)
  <name>-<scheme>-<key>/   key = hash of backend, model id or folder content, revision, scheme
    model.onnx             onnx: torch export -> onnxruntime BERT fusion -> (int8: dynamic)
    model.xml, model.bin   openvino: see volfefe.child.export_openvino (int8-static, bf16: guarded)
    embeddings.onnx, layer-NN.onnx, head.onnx
                           onnx-layered: one graph per stage, see volfefe.child.export_layered
    tokenizer.json         the fast tokenizer, so the child needs no transformers
    volfefe-*.json         labels, max length, pad id, model_version, fingerprints (, guard)
  .<folder>.refused.json   a guarded export (int8-static, bf16) the accuracy guard refused
  .digests/                whole-file SHA-256 of weights, cached by size and mtime
```

Written to a private temporary folder (mkdtemp in a checked cache root) and renamed into
place under a file lock opened with O_NOFOLLOW, so readers never see half an export and a
planted symlink redirects nothing; a folder whose model files do not match their recorded
whole-file digests is rebuilt. Needs torch, transformers and the `onnx` extra (onnx,
onnxscript) or the `openvino` extra (openvino, nncf) at export time only.

Exit codes: 0 (prints the folder), 3 the model cannot be exported, 4 the accuracy guard
refused the guarded export (prints its figures as one JSON line on stdout), 6 a bf16 scheme
on a CPU without bf16 arithmetic.
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

from volfefe.child import export_layered
from volfefe.child.backends import onnx_backend, openvino_backend
from volfefe.child.digest import UnsafeFolder, checked_folder, file_digest
from volfefe.child.engine import ModelLoadError, model_version_of, resolve_labels
from volfefe.child.export_openvino import Calibration, GuardRefused, NoBf16
from volfefe.child.onnx_export import OPSET, exporter_modules, quantize_dynamic_int8
from volfefe.protocol import (
    EXIT_BOOT_FAILED,
    EXIT_GUARD_REFUSED,
    EXIT_NO_BF16,
    GUARDED_SCHEMES,
    QUANTIZE_SCHEMES,
)

# Each backend's export recipe; bump one when its recipe changes, so its caches are rebuilt
# (onnx-layered 3: the one-graph model beside the stages).
EXPORT_FORMATS = {"onnx": 2, "onnx-layered": 3, "openvino": 2}
DIGESTS = ".digests"
# backend -> (record file, model files whose digests the record keeps; None: the graph
# files its record lists under "stages", one per layer)
LAYOUT: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "onnx": (onnx_backend.META_FILE, (onnx_backend.MODEL_FILE,)),
    "onnx-layered": (export_layered.META_FILE, None),
    "openvino": (
        openvino_backend.META_FILE,
        (openvino_backend.MODEL_FILE, openvino_backend.WEIGHTS_FILE),
    ),
}
SCHEMES = {"onnx": ("none", "int8"), "onnx-layered": ("none", "int8"), "openvino": QUANTIZE_SCHEMES}


def cache_folder(
    root: Path, model: str, revision: str | None, quantize: str, backend: str = "onnx"
) -> Path:
    """Where the export of this model, revision, backend and quantisation lives under `root`."""
    local = Path(model).is_dir()
    identity = model_version_of(model, revision, None, root / DIGESTS) if local else model
    key = hashlib.sha256(
        json.dumps([EXPORT_FORMATS[backend], backend, identity, revision or "", quantize]).encode()
    ).hexdigest()[:16]
    name = Path(model).name if local else model.replace("/", "--")
    prefix = "" if backend == "onnx" else f"{backend}-"
    return root / f"{prefix}{name}-{quantize}-{key}"


def fingerprint(path: Path, cache: Path | None = None) -> str:
    """SHA-256 of the whole file (the digest cached in `cache` by size and mtime)."""
    return file_digest(path, cache)


def is_complete(folder: Path, backend: str = "onnx") -> bool:
    """True when the folder holds an export whose model files match their record."""
    meta_file = LAYOUT[backend][0]
    digests = folder.parent / DIGESTS
    try:
        meta = json.loads((folder / meta_file).read_text(encoding="utf-8"))
        recorded = meta.get("fingerprints", {})
        model_files = model_files_of(backend, meta)
        return bool(
            meta.get("format") == EXPORT_FORMATS[backend]
            and model_files
            and (folder / onnx_backend.TOKENIZER_FILE).is_file()
            and all(fingerprint(folder / f, digests) == recorded.get(f) for f in model_files)
        )
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def model_files_of(backend: str, meta: dict[str, Any]) -> tuple[str, ...]:
    """The model files of an export of `backend` whose record is `meta`: fixed names, or
    the stage graphs and the one-graph model the record lists (ValueError when it lists no
    stage, or a name that is not a plain file name).

    >>> model_files_of("onnx-layered", {"stages": ["embeddings.onnx", "head.onnx"]})
    ('embeddings.onnx', 'head.onnx')
    >>> model_files_of("onnx-layered", {"stages": ["head.onnx"], "whole": "model.onnx"})
    ('head.onnx', 'model.onnx')
    """
    fixed = LAYOUT[backend][1]
    if fixed is not None:
        return fixed
    stages = tuple(str(name) for name in meta.get("stages", ()))
    if not stages:
        raise ValueError("the record lists no stage files")
    files = stages + ((str(meta["whole"]),) if "whole" in meta else ())
    if any(Path(name).name != name or name.startswith(".") for name in files):
        raise ValueError(f"a model file name is not a plain file name: {files}")
    return files


def ensure_export(
    root: Path,
    model: str,
    revision: str | None,
    quantize: str,
    backend: str = "onnx",
    *,
    calibration: Calibration | None = None,
    force: bool = False,
) -> Path:
    """The cached export, made (or rebuilt when incomplete, corrupt or `force`d) if needed.

    `calibration` is needed for a guarded scheme (int8-static, bf16, int8-static-bf16). A
    refusal by the accuracy guard raises GuardRefused, is remembered next to the cache
    folder, and is raised again without new work until `force` or other thresholds; a
    refused export never replaces an installed one.
    """
    try:
        checked_folder(root)
    except (OSError, UnsafeFolder) as exc:
        raise ModelLoadError(f"cannot use the export cache {root}: {exc}") from exc
    folder = cache_folder(root, model, revision, quantize, backend)
    if not force and is_complete(folder, backend):
        _check_recorded_guard(folder / LAYOUT[backend][0], calibration)
        return folder
    refused = root / f".{folder.name}.refused.json"
    with _locked(root / f".{folder.name}.lock"):
        if not force and is_complete(folder, backend):  # another process finished it
            _check_recorded_guard(folder / LAYOUT[backend][0], calibration)
            return folder
        if not force and calibration is not None:
            _raise_if_refused_before(refused, calibration)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))  # 0700, O_EXCL
        try:
            meta = _export(model, revision, quantize, backend, tmp, calibration, root / DIGESTS)
            meta_file = LAYOUT[backend][0]
            meta["format"] = EXPORT_FORMATS[backend]
            meta["fingerprints"] = {f: fingerprint(tmp / f) for f in model_files_of(backend, meta)}
            (tmp / meta_file).write_text(json.dumps(meta, indent=2), encoding="utf-8")
            if folder.exists():
                shutil.rmtree(folder)
            tmp.rename(folder)
            refused.unlink(missing_ok=True)
        except Exception as exc:
            _remember_refusal(exc, refused)
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _export(
    model: str,
    revision: str | None,
    quantize: str,
    backend: str,
    out: Path,
    calibration: Calibration | None,
    digests: Path,
) -> dict[str, Any]:
    if quantize not in SCHEMES[backend]:
        raise ModelLoadError(f"the {backend} backend has no {quantize!r} quantisation")
    if backend == "openvino":
        from volfefe.child.export_openvino import export_openvino

        return export_openvino(
            model, revision, quantize, out, calibration=calibration, digest_cache=digests
        )
    if backend == "onnx-layered":
        # The one-graph export beside the stages: its record (the scores are the same to
        # rounding), and the model a pass nobody preempts runs.
        record = export(model, revision, quantize, out, digests)
        stages = export_layered.export_layered(model, revision, quantize, out)
        return {**record, "stages": stages, "whole": onnx_backend.MODEL_FILE}
    return export(model, revision, quantize, out, digests)


def _check_recorded_guard(meta_file: Path, calibration: Calibration | None) -> None:
    """A cached guarded export still has to pass today's thresholds."""
    if calibration is None:
        return
    from volfefe.child.guard import GuardFigures

    guard = json.loads(meta_file.read_text(encoding="utf-8")).get("guard")
    if not guard:  # not a guarded export
        return
    figures = GuardFigures(guard["n"], guard["label_agreement"], guard["max_abs_dp"])
    if not figures.passes(min_agreement=calibration.min_agreement, max_dp=calibration.max_dp):
        raise GuardRefused(figures, calibration)


def _raise_if_refused_before(record: Path, calibration: Calibration) -> None:
    from volfefe.child.guard import GuardFigures

    try:
        saved = json.loads(_read_nofollow(record))
        figures = GuardFigures(saved["n"], saved["label_agreement"], saved["max_abs_dp"])
        same = (saved["min_agreement"], saved["max_dp"]) == (
            calibration.min_agreement,
            calibration.max_dp,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return
    if same:
        raise GuardRefused(figures, calibration)


def _remember_refusal(exc: Exception, record: Path) -> None:
    if not isinstance(exc, GuardRefused):
        return
    fd, tmp = tempfile.mkstemp(prefix=".refused.", dir=record.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({**exc.figures.as_dict(), **exc.thresholds}, fh)
    os.replace(tmp, record)


def _read_nofollow(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        return fh.read(1 << 16)


def export(
    model: str, revision: str | None, quantize: str, out: Path, digests: Path | None = None
) -> dict[str, Any]:
    """Export `model` to ONNX in `out` and return its record; ModelLoadError when impossible."""
    torch, optimizer = exporter_modules()
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
    fused.save_model_to_file(str(out / onnx_backend.MODEL_FILE))
    raw.unlink()
    if quantize == "int8":
        quantize_dynamic_int8(out / onnx_backend.MODEL_FILE)
    tokenizer.backend_tokenizer.save(str(out / onnx_backend.TOKENIZER_FILE))
    base = model_version_of(model, revision, getattr(config, "_commit_hash", None), digests)
    return {
        "model": model,
        "model_version": f"{base}+onnx" + ("-int8" if quantize == "int8" else ""),
        "labels": labels,
        "max_length": max_length_of(tokenizer, hf_model),
        "pad_id": int(tokenizer.pad_token_id or 0),
        "quantize": quantize,
        "fused": {k: v for k, v in fused.get_fused_operator_statistics().items() if v},
    }


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path`, which is opened without following a symlink (a link
    planted there by another user makes this fail instead of truncating its target)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ModelLoadError(f"cannot open the export lock {path}: {exc}") from exc
    with os.fdopen(fd, "r+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The exporter's options (the orchestrator passes them from its Settings)."""
    parser = argparse.ArgumentParser(description="Export a model for volfefe's children.")
    parser.add_argument("--model", required=True)
    parser.add_argument("--revision")
    parser.add_argument("--backend", choices=sorted(SCHEMES), default="onnx")
    parser.add_argument("--quantize", choices=QUANTIZE_SCHEMES, default="none")
    parser.add_argument("--cache-root", type=Path, required=True)
    parser.add_argument(
        "--calibrate",
        type=Path,
        help="guarded schemes: texts to calibrate and check (JSONL or lines)",
    )
    parser.add_argument("--calibration-label", help="where the --calibrate texts come from")
    parser.add_argument("--calibration-size", type=int, default=300)
    parser.add_argument("--guard-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-agreement", type=float, default=0.97)
    parser.add_argument("--max-dp", type=float, default=0.2)
    parser.add_argument("--force", action="store_true", help="export again even if cached")
    return parser.parse_args(argv)


def default_calibration() -> Calibration:
    """The shipped sample posts with the default sizes and guard thresholds."""
    calibration = calibration_of(
        parse_args(["--model", "-", "--cache-root", "-", "--quantize", "int8-static"])
    )
    assert calibration is not None  # a guarded scheme always has one
    return calibration


def calibration_of(args: argparse.Namespace) -> Calibration | None:
    """The Calibration of a guarded scheme (int8-static, bf16, int8-static-bf16; None
    otherwise): the given file, or the shipped sample."""
    if args.quantize not in GUARDED_SCHEMES:
        return None
    from volfefe.child.calibration import default_texts, read_texts

    try:
        texts = read_texts(args.calibrate) if args.calibrate else default_texts()
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the calibration texts: {exc}") from exc
    return Calibration(
        texts=texts,
        source=args.calibration_label
        or (f"file {args.calibrate.name}" if args.calibrate else "shipped sample"),
        size=args.calibration_size,
        guard_size=args.guard_size,
        seed=args.seed,
        min_agreement=args.min_agreement,
        max_dp=args.max_dp,
    )


def main(argv: list[str] | None = None) -> int:
    """Export (or find) the model and print its folder; see the module docstring's exit codes."""
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = os.fdopen(os.dup(1), "w")  # the result line only: progress bars go to stderr
    os.dup2(2, 1)
    try:
        folder = ensure_export(
            args.cache_root,
            args.model,
            args.revision,
            args.quantize,
            args.backend,
            calibration=calibration_of(args),
            force=args.force,
        )
    except GuardRefused as exc:
        print(f"volfefe export: {exc}", file=sys.stderr)
        print(json.dumps({"refused": {**exc.figures.as_dict(), **exc.thresholds}}), file=out)
        out.flush()
        return EXIT_GUARD_REFUSED
    except NoBf16 as exc:
        print(f"volfefe export: {exc}", file=sys.stderr)
        return EXIT_NO_BF16
    except ModelLoadError as exc:
        print(f"volfefe export: {exc}", file=sys.stderr)
        return EXIT_BOOT_FAILED
    print(folder, file=out)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
