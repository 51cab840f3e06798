"""The project's papers: the version in one place, the licence, the changelog."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import volfefe
from tests.docs.examples import ROOT


def test_version_has_one_source_and_the_cli_prints_it() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert volfefe.__version__ == declared
    shown = subprocess.run(
        [sys.executable, "-m", "volfefe", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (shown.returncode, shown.stdout, shown.stderr) == (
        0,
        f"volfefe, version {declared}\n",
        "",
    )


def test_changelog_has_a_section_for_the_version_and_the_licence_is_apache() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{volfefe.__version__}] - " in changelog
    assert "Keep a Changelog" in changelog
    licence = (ROOT / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence
