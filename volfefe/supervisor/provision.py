"""What the children load: the model as is (torch), or its cached ONNX or OpenVINO export.

The export runs in its own process (`python -m volfefe.child.export`, argument list, no
shell) because it needs torch, which the orchestrator never imports. A guarded export
(int8-static and int8-static-bf16, calibrated on `calibrate`, else the shipped sample posts;
bf16) must pass the accuracy guard; the exporter exits 4 with the guard's figures when it
refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from volfefe.config import Settings
from volfefe.errors import AccuracyGuardFailed, Bf16Unavailable, WorkerBootError
from volfefe.protocol import (
    EXIT_BOOT_FAILED,
    EXIT_GUARD_REFUSED,
    EXIT_NO_BF16,
    GUARDED_SCHEMES,
    STATIC_SCHEMES,
    f32_counterpart,
)
from volfefe.supervisor.child_env import child_environment

STDERR_TAIL = 4000
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportRequest:
    """What `volfefe model export` asks beyond the settings: calibration texts (a file, and
    where they come from), the sample's seed, and whether to export again when cached."""

    calibrate: Path | None = None
    label: str | None = None
    seed: int = 0
    force: bool = False


async def backend_args(settings: Settings, request: ExportRequest | None = None) -> list[str]:
    """The children's backend options, exporting the model (ONNX or OpenVINO) first if needed.

    With `backend=auto`, a guarded export that the accuracy guard refuses falls back
    (int8-static-bf16 -> int8-static -> int8 on the fastest backend for it; bf16 -> none), a
    bf16 scheme on a CPU without bf16 (the exporter's exit 6) to its f32 counterpart, and a
    model that cannot be exported runs on torch (the reference), each with a warning; an
    explicit backend raises the error (`AccuracyGuardFailed`, `WorkerBootError`). `request`
    (calibration, seed, force) comes from `volfefe model export`.
    """
    backend = settings.resolved_backend
    if backend == "torch":
        return _torch_args(settings)
    try:
        return await _export_args(settings, backend, request or ExportRequest())
    except AccuracyGuardFailed as exc:
        if settings.backend != "auto":
            raise
        instead = refused_fallback(settings.quantize)
        logger.warning("%s; using %s instead", exc, instead)
        return _quantized(await backend_args(settings.replace(quantize=instead)), instead)
    except WorkerBootError as exc:
        if settings.backend != "auto":
            raise
        if isinstance(exc, Bf16Unavailable):
            instead = f32_counterpart(settings.quantize)
            logger.warning("the %s export failed, using %s: %s", settings.quantize, instead, exc)
            return _quantized(await backend_args(settings.replace(quantize=instead)), instead)
        logger.warning("%s export failed, using the torch backend: %s", backend, exc)
        if settings.quantize in GUARDED_SCHEMES:  # torch has neither static int8 nor bf16
            instead = "int8" if settings.quantize in STATIC_SCHEMES else "none"
            return _quantized(_torch_args(settings), instead)
        return _torch_args(settings)


def refused_fallback(scheme: str) -> str:
    """What `auto` runs when the guard refuses `scheme`: the same without bf16, and dynamic
    int8 for int8-static.

    >>> [refused_fallback(s) for s in ("int8-static-bf16", "int8-static", "bf16")]
    ['int8-static', 'int8', 'none']
    """
    return "int8" if scheme == "int8-static" else f32_counterpart(scheme)


def _quantized(args: list[str], quantize: str) -> list[str]:
    """The children's options with `--quantize` (unless a deeper fallback has set one)."""
    return args if "--quantize" in args else [*args, "--quantize", quantize]


def _torch_args(settings: Settings) -> list[str]:
    # The torch child caches its weights digest (for model_version) in the export cache.
    return ["--backend", "torch", "--export-cache", str(settings.export_cache)]


async def _export_args(settings: Settings, backend: str, request: ExportRequest) -> list[str]:
    layered = backend == "onnx" and settings.preempt == "layers"
    argv = [
        sys.executable,
        "-m",
        "volfefe.child.export",
        "--model",
        settings.model,
        "--backend",
        "onnx-layered" if layered else backend,
        "--quantize",
        settings.quantize,
        "--cache-root",
        str(settings.export_cache),
    ]
    if settings.revision:
        argv += ["--revision", settings.revision]
    if settings.quantize in GUARDED_SCHEMES:
        argv += [
            "--calibration-size",
            str(settings.calibration_size),
            "--guard-size",
            str(settings.guard_size),
            "--min-agreement",
            repr(settings.guard_min_agreement),
            "--max-dp",
            repr(settings.guard_max_dp),
            "--seed",
            str(request.seed),
        ]
        if request.calibrate is not None:
            argv += ["--calibrate", str(request.calibrate)]
        if request.label:
            argv += ["--calibration-label", request.label]
    if request.force:
        argv.append("--force")
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_environment(os.environ, settings.worker_env),  # it runs model code too
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(settings.export_timeout):
            out, err = await proc.communicate()
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        if isinstance(exc, TimeoutError):
            raise WorkerBootError(
                f"the {backend} export took longer than {settings.export_timeout:g} s",
                pid=proc.pid,
                timed_out=True,
            ) from None
        raise
    tail = err.decode("utf-8", "replace")[-STDERR_TAIL:]
    lines = out.decode("utf-8", "replace").strip().splitlines()
    if proc.returncode == EXIT_GUARD_REFUSED and lines:
        figures = json.loads(lines[-1])["refused"]
        raise AccuracyGuardFailed(
            figures["label_agreement"],
            figures["max_abs_dp"],
            figures["n"],
            min_agreement=figures["min_agreement"],
            max_dp=figures["max_dp"],
            scheme=settings.quantize,
        )
    if proc.returncode == EXIT_NO_BF16:
        raise Bf16Unavailable(
            f"the {settings.quantize} export of {settings.model!r} needs bf16 arithmetic, "
            "which this CPU lacks: use none or int8-static (or VOLFEFE_BACKEND=auto)",
            pid=proc.pid,
            returncode=EXIT_BOOT_FAILED,  # deterministic: restarting cannot help
            stderr=tail,
        )
    if proc.returncode != 0 or not lines:
        raise WorkerBootError(
            f"the {backend} export of {settings.model!r} failed (it will not be retried)",
            pid=proc.pid,
            returncode=EXIT_BOOT_FAILED,
            stderr=tail,
        )
    preempt = (
        ["--preempt", "layers", "--short-tokens", str(settings.short_tokens)] if layered else []
    )
    return ["--backend", backend, "--export-dir", lines[-1], *preempt]
