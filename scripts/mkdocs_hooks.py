"""MkDocs hook: the per-CPU benchmark pages (docs/benchmarks/*.md, written by
`python -m benches render`) join the navigation under Benchmarks, so a rendered page is
never left out of it (and `mkdocs build --strict` never fails on one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def on_config(config: Any) -> Any:
    """Add each docs/benchmarks/<cpu-slug>.md after the Benchmarks page."""
    pages = sorted((Path(config["docs_dir"]) / "benchmarks").glob("*.md"))
    for section in config["nav"]:
        if isinstance(section, dict) and "Benchmarks" in section:
            section["Benchmarks"][1:1] = [{page.stem: f"benchmarks/{page.name}"} for page in pages]
    return config
