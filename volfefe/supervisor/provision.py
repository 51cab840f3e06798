"""What the children load: the model as is (torch), or its cached ONNX export (made once).

The export runs in its own process (`python -m volfefe.child.export`, argument list, no
shell) because it needs torch, which the orchestrator never imports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys

from volfefe.config import Settings
from volfefe.errors import WorkerBootError
from volfefe.protocol import EXIT_BOOT_FAILED
from volfefe.supervisor.child_env import child_environment

STDERR_TAIL = 4000
logger = logging.getLogger(__name__)


async def backend_args(settings: Settings) -> list[str]:
    """The children's backend options, exporting the model to ONNX first if needed.

    With `backend=auto`, a model that cannot be exported runs on torch (the reference) with
    a warning; with `backend=onnx` the export error is raised.
    """
    if settings.resolved_backend != "onnx":
        return ["--backend", "torch"]
    try:
        return await _onnx_args(settings)
    except WorkerBootError as exc:
        if settings.backend != "auto":
            raise
        logger.warning("ONNX export failed, using the torch backend: %s", exc)
        return ["--backend", "torch"]


async def _onnx_args(settings: Settings) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "volfefe.child.export",
        "--model",
        settings.model,
        "--quantize",
        settings.quantize,
        "--cache-root",
        str(settings.onnx_cache),
    ]
    if settings.revision:
        argv += ["--revision", settings.revision]
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
                f"the ONNX export took longer than {settings.export_timeout:g} s",
                pid=proc.pid,
                timed_out=True,
            ) from None
        raise
    tail = err.decode("utf-8", "replace")[-STDERR_TAIL:]
    if proc.returncode != 0:
        raise WorkerBootError(
            f"the ONNX export of {settings.model!r} failed (it will not be retried)",
            pid=proc.pid,
            returncode=EXIT_BOOT_FAILED,
            stderr=tail,
        )
    return ["--backend", "onnx", "--onnx-dir", out.decode().strip().splitlines()[-1]]
