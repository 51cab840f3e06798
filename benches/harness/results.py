"""A run's result JSON: the suite's rows and figures with what they depend on (the commit and
whether the tree was dirty, the CPU model and flags, the cores, the settings, the date and the
library versions), and where committed results live (`benches/results/<cpu-slug>/`)."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from .process import ROOT
from .suite import Outcome

RESULTS = ROOT / "benches" / "results"
CPUINFO = Path("/proc/cpuinfo")
# The CPU flags the backends' speed depends on (vector width, int8 dot products, bf16, AMX).
RELEVANT_FLAG = re.compile(r"^(avx.*|amx_.*|fma|f16c)$")
LIBRARIES = ("torch", "transformers", "onnxruntime", "openvino")


def cpu(cpuinfo: str) -> dict[str, Any]:
    """The CPU's model name and its relevant flags, from the text of /proc/cpuinfo.

    >>> cpu("model name\\t: Example CPU\\nflags\\t\\t: fpu avx2 sse4_2 amx_int8 avx512f\\n")
    {'model': 'Example CPU', 'flags': ['amx_int8', 'avx2', 'avx512f']}
    """
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = sorted(f for f in fields.get("flags", "").split() if RELEVANT_FLAG.match(f))
    return {"model": fields.get("model name", platform.processor() or "unknown"), "flags": flags}


def cpu_slug(model: str) -> str:
    """The CPU model name as a folder and page name.

    >>> cpu_slug("AMD Ryzen 9 7950X 16-Core Processor")
    'amd-ryzen-9-7950x-16-core-processor'
    >>> cpu_slug("Intel(R) Xeon(R) Platinum 8488C")
    'intel-xeon-platinum-8488c'
    """
    name = re.sub(r"\((r|tm|c)\)", "", model.lower())
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "unknown-cpu"


def git_commit() -> tuple[str | None, bool | None]:
    """(HEAD's hash, whether tracked files differ from it); (None, None) outside a checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=30
        )
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    if head.returncode != 0 or status.returncode != 0:
        return None, None
    return head.stdout.strip(), bool(status.stdout.strip())


def versions() -> dict[str, str | None]:
    """Python's and the libraries' versions (None for a library that is not installed)."""

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {"python": platform.python_version(), **{name: version(name) for name in LIBRARIES}}


def envelope(
    suite: str,
    commit: tuple[str | None, bool | None],
    options: Mapping[str, Any],
    settings: Mapping[str, str],
    environment: Mapping[str, str],
    outcome: Outcome,
) -> dict[str, Any]:
    """The result JSON of one run: what it ran on and with (`commit`: `git_commit()` when the
    run began), then its rows and figures."""
    text = CPUINFO.read_text() if CPUINFO.is_file() else ""
    return {
        "suite": suite,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit[0],
        "dirty": commit[1],
        "cpu": cpu(text),
        "cores": os.cpu_count(),
        "versions": versions(),
        "settings": {
            "set": dict(settings),
            "environment": dict(environment),
            "options": {k: jsonable(v) for k, v in options.items()},
        },
        "ok": outcome.ok,
        "rows": outcome.rows,
        "report": outcome.report,
    }


def jsonable(value: Any) -> Any:
    """An option's value as JSON: scalars as they are, sequences as lists, the rest as str.

    >>> jsonable(Path("/m")), jsonable([(1, 2)]), jsonable(None)
    ('/m', [[1, 2]], None)
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    return str(value)


def write(path: Path, result: Mapping[str, Any]) -> None:
    """Write a result JSON (indented, one trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def saved_path(result: Mapping[str, Any]) -> Path:
    """Where `--save` puts a result: benches/results/<cpu-slug>/<suite>-<date>.json."""
    stamp = str(result["date"]).replace(":", "").replace("+0000", "Z")
    return RESULTS / cpu_slug(result["cpu"]["model"]) / f"{result['suite']}-{stamp}.json"
