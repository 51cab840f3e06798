"""volfefe installed from its wheel (not editable), used from a folder outside the checkout.

The wheel goes into a fresh virtual environment that borrows the test environment's
dependencies (torch, transformers, ...) through a `.pth` file, so nothing is downloaded and
the checkout is nowhere on the path: the CLI and its children must run the installed code.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
PIP = (sys.executable, "-m", "pip")


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> str:
    """Run a command (argument list), fail the test with its output when it fails."""
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the built wheel installed in it; its bin/ folder."""
    work = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL")}
    run(
        [
            *PIP,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(work / "dist"),
            str(ROOT),
        ],
        work,
        env,
    )
    (wheel,) = (work / "dist").glob("volfefe-*.whl")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], work, env)
    new_site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # The dependencies, not volfefe: a .pth adds a folder to the path without running the
    # editable-install hook that lives in it.
    (new_site / "test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run(
        [*PIP, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "-q", str(wheel)],
        work,
        env,
    )
    return venv / "bin"


def test_the_wheel_classifies_from_outside_the_checkout(
    installed: Path, tiny_model: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL")}
    env.update(
        VOLFEFE_MODEL=str(tiny_model),
        VOLFEFE_BACKEND="torch",
        VOLFEFE_WORKERS="1",
        VOLFEFE_THREADS="1",
        VOLFEFE_DATA_DIR=str(tmp_path / "data"),
    )
    where = run(
        [str(installed / "python"), "-c", "import volfefe; print(volfefe.__file__)"], outside, env
    )
    assert where.startswith(str(installed.parent)), where

    out = run([str(installed / "volfefe"), "predict", "Stocks rally"], outside, env)
    assert json.loads(out)["sentiment"] in ("positive", "negative", "neutral")

    try:
        run(
            [str(installed / "volfefe"), "import", str(ROOT / "data" / "sample_posts.jsonl")],
            outside,
            env,
        )
        out = run([str(installed / "volfefe"), "classify", "--limit", "5", "--json"], outside, env)
        summary = json.loads(out)
        assert (summary["total"], summary["succeeded"]) == (5, 5)
    finally:  # the embedded server outlives its clients by design; this one is the test's
        run([str(installed / "volfefe"), "db", "stop"], outside, env)


def test_the_wheel_ships_the_dashboard_templates_and_static_files(
    installed: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL")}
    listing = run(
        [
            str(installed / "python"),
            "-c",
            "from importlib import resources; web = resources.files('volfefe.web'); "
            "print(web); print(*sorted(p.name for d in ('templates', 'static') "
            "for p in (web / d).iterdir()))",
        ],
        tmp_path,
        env,
    )
    where, names = listing.splitlines()
    assert where.startswith(str(installed.parent)), where
    for name in ("base.html", "overview.html", "posts.html", "post.html", "jobs.html"):
        assert name in names.split(), name
    assert {"live.js", "style.css"} <= set(names.split())
