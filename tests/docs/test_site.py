"""The docs site builds with `mkdocs build --strict`: a broken link or anchor, a page left
out of the navigation, or a public name mkdocstrings cannot document fails the build."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.examples import ROOT


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={"PATH": "", "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)},
    )
    assert built.returncode == 0, built.stderr
    reference = (tmp_path / "site" / "reference" / "index.html").read_text()
    for name in ("Classifier", "Settings", "watch", "PoolBroken"):
        assert f'id="volfefe.{name}"' in reference


def test_the_readme_links_to_files_that_exist() -> None:
    """The README is not part of the site (mkdocs does not check it): its links are."""
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((?!https?://|#)([^)#]+)", readme)
    assert links
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing
