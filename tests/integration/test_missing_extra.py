"""A backend whose runtime is not installed is a ConfigError (exit 2) at once, whether the
export is already cached or not: never a crash loop of children that cannot import it.

The runtime goes missing for real, in the `python -m volfefe` process and the children it
starts (they inherit PYTHONPATH): either absent, as without the extra (a `sitecustomize`
that sets `sys.modules[name] = None`, so importing fails and `find_spec` finds nothing), or
broken (a package of that name whose import raises ModuleNotFoundError).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import run_cli

RUNTIMES = [("onnx", "onnxruntime"), ("openvino", "openvino")]


def volfefe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m volfefe ARGS` as a user runs it."""
    return run_cli(*args, env=env, timeout=300)


@pytest.fixture(scope="module")
def cache(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An export cache holding the tiny model's onnx and openvino exports."""
    root = tmp_path_factory.mktemp("old-exports")
    for backend, _ in RUNTIMES:
        env = {"VOLFEFE_MODEL": str(tiny_model), "VOLFEFE_EXPORT_CACHE": str(root)}
        made = volfefe(env, "--backend", backend, "model", "export")
        assert made.returncode == 0, made.stderr
    return root


def hide(module: str, how: str, folder: Path) -> str:
    """A PYTHONPATH on which `module` is missing (`how`: absent or broken)."""
    folder.mkdir()
    if how == "absent":
        (folder / "sitecustomize.py").write_text(f"import sys\nsys.modules[{module!r}] = None\n")
    else:
        (folder / module).mkdir()
        (folder / module / "__init__.py").write_text(
            f'raise ModuleNotFoundError("No module named {module!r}", name={module!r})\n'
        )
    return os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)


@pytest.mark.parametrize("how", ["absent", "broken"])
@pytest.mark.parametrize("backend, module", RUNTIMES)
def test_a_cached_export_without_its_runtime_is_a_config_error(
    tiny_model: Path, cache: Path, tmp_path: Path, backend: str, module: str, how: str
) -> None:
    env = {
        "VOLFEFE_MODEL": str(tiny_model),
        "VOLFEFE_EXPORT_CACHE": str(cache),
        "VOLFEFE_BACKEND": backend,
        "VOLFEFE_WORKERS": "1",
        "PYTHONPATH": hide(module, how, tmp_path / "hidden"),
    }
    proc = volfefe(env, "predict", "stocks rally")
    assert proc.returncode == 2, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("ConfigError: ")]
    assert error, proc.stderr
    assert module in proc.stderr and f"the {backend} extra" in proc.stderr
    assert "restarting" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""
