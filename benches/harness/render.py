"""The benchmark pages, rendered from the committed result JSON only.

    benches/results/<cpu-slug>/*.json  ──render──>  docs/benchmarks.md             (the index)
                                                    docs/benchmarks/<cpu-slug>.md  (one per CPU)
    benches/results/<cpu-slug>/comparisons/*.json  ──>  the comparison tables of README.md
                                                        and docs/*.md (comparison.py)

A figure in these pages is a figure of a committed result: nothing is typed by hand. The
index holds the method, how to run, and each CPU's latest result per suite; a CPU's page holds
every result of that CPU, newest first, with what it ran on and with. tests/bench checks that
the committed pages are what `render` writes now.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import comparison
from .process import ROOT
from .results import RESULTS
from .tables import markdown_table

DOCS = ROOT / "docs"
INDEX = "benchmarks.md"
PAGES = "benchmarks"
GENERATED = "<!-- Written by `python -m benches render` from benches/results/; do not edit. -->"

METHOD = """\
Every figure here comes from a result JSON committed under `benches/results/<cpu-slug>/`,
written by `python -m benches run SUITE --save` (or `--json PATH`). Each result records the
suite, the commit it ran (and whether the tree was dirty), the CPU model and the flags the
backends' speed depends on (AVX2, AVX-512, VNNI, bf16, AMX), the core count, the settings
(every `--set VOLFEFE_NAME=VALUE`, the VOLFEFE_* variables of the environment, the suite's
options), the date (UTC) and the Python, torch, transformers, ONNX Runtime and OpenVINO
versions, then its rows. A suite compares its rows within one run, on one machine, one after
the other (never at once); figures of different runs, machines or commits compare only
roughly. Without `--model`, the suites run a FinBERT-sized random model (finbert-tone's
architecture and vocabulary size, built by scripts/make_finbert_like_model.py), so the
compute is the real model's; `--save` refuses a `--quick` run (the tiny test model)."""


def load_results(results_dir: Path = RESULTS) -> dict[str, list[dict[str, Any]]]:
    """CPU slug -> its results, newest first (by date, then file name)."""
    by_cpu: dict[str, list[dict[str, Any]]] = {}
    for folder in sorted(p for p in results_dir.iterdir() if p.is_dir()):
        found = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
        if found:
            by_cpu[folder.name] = sorted(found, key=lambda r: str(r["date"]), reverse=True)
    return by_cpu


def cell(value: Any) -> str:
    """A figure as a table shows it.

    >>> cell(12.3456), cell(None), cell(3), cell("onnx_int8")
    ('12.35', 'n/a', '3', 'onnx_int8')
    """
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def rows_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """A result's rows as a Markdown table: one column per field, in first-seen order; the
    first column (the row's name) left-aligned, the figures right-aligned."""
    if not rows:
        return ["(no rows)"]
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    align = "l" + "r" * (len(columns) - 1)
    return markdown_table(columns, align, ([cell(row.get(c)) for c in columns] for row in rows))


def provenance(result: Mapping[str, Any]) -> list[str]:
    """What a result ran on and with, as a few list items."""
    commit = result.get("commit") or "unknown"
    dirty = " (dirty tree)" if result.get("dirty") else ""
    settings = result.get("settings", {})
    given = {**settings.get("environment", {}), **settings.get("set", {})}
    options = ", ".join(f"{k}={v}" for k, v in settings.get("options", {}).items())
    versions = ", ".join(f"{k} {v}" for k, v in result.get("versions", {}).items() if v)
    return [
        f"- date {result['date']}, commit `{commit[:12]}`{dirty}, {result.get('cores')} cores",
        # Hosts of one model name may differ (a virtual CPU's name can omit its generation).
        f"- CPU flags: {', '.join(result.get('cpu', {}).get('flags', [])) or 'unknown'}",
        f"- settings: {', '.join(f'{k}={v}' for k, v in given.items()) or 'defaults'}",
        f"- options: {options or 'none'}",
        f"- versions: {versions}",
    ]


def latest_by_suite(results: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Each suite's newest result (the results come newest first)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for result in results:
        latest.setdefault(str(result["suite"]), result)
    return latest


def index_page(by_cpu: Mapping[str, list[dict[str, Any]]], suites: Mapping[str, str]) -> str:
    """docs/benchmarks.md: method, how to run, each CPU's latest figures per suite."""
    lines = ["# Benchmarks", "", GENERATED, "", "## Method", "", METHOD, "", "## How to run", ""]
    lines += ["```", "python -m benches list", "python -m benches run SUITE --save "]
    lines[-1] += "[--set VOLFEFE_NAME=VALUE ...] [the suite's options]"
    lines += ["python -m benches render", "```", ""]
    lines += ["`python -m benches run SUITE --help` lists a suite's options. The suites:", ""]
    lines += [f"- `{name}`: {description}" for name, description in suites.items()]
    lines += ["", "## Current figures", ""]
    if not by_cpu:
        lines += ["No results are committed yet."]
    for slug, results in by_cpu.items():
        cpu = results[0]["cpu"]
        lines += [
            f"### {cpu['model']}",
            "",
            f"Every run on this CPU: [{slug}]({PAGES}/{slug}.md).",
            "",
        ]
        for suite, result in sorted(latest_by_suite(results).items()):
            lines += [f"#### {suite}", "", *provenance(result), "", *rows_table(result["rows"]), ""]
    return "\n".join(lines).rstrip() + "\n"


def cpu_page(slug: str, results: Sequence[Mapping[str, Any]]) -> str:
    """docs/benchmarks/<slug>.md: every result of one CPU, by suite, newest first."""
    cpu = results[0]["cpu"]
    lines = [f"# Benchmarks on {cpu['model']}", "", GENERATED, ""]
    lines += [f"Flags: {', '.join(cpu['flags']) or 'none of note'}. Results: "]
    lines[-1] += f"`benches/results/{slug}/`. Method: [the index](../{INDEX})."
    for suite in sorted({str(r["suite"]) for r in results}):
        lines += ["", f"## {suite}"]
        for result in (r for r in results if r["suite"] == suite):
            lines += ["", f"### {result['date']}", "", *provenance(result), ""]
            lines += rows_table(result["rows"])
    return "\n".join(lines).rstrip() + "\n"


def pages(
    suites: Mapping[str, str], results_dir: Path = RESULTS, docs: Path = DOCS
) -> dict[Path, str]:
    """Every page render writes, by path."""
    by_cpu = load_results(results_dir)
    out = {docs / INDEX: index_page(by_cpu, suites)}
    for slug, results in by_cpu.items():
        out[docs / PAGES / f"{slug}.md"] = cpu_page(slug, results)
    for page in [docs.parent / "README.md", *sorted(docs.glob("*.md"))]:
        text = page.read_text(encoding="utf-8") if page.is_file() else ""
        if page not in out and comparison.BLOCK.search(text):
            out[page] = comparison.rewrite(text, results_dir)
    return out


def stale(wanted: Mapping[Path, str], docs: Path = DOCS) -> list[Path]:
    """Pages that differ from what render writes, are missing, or should not be there."""
    extra = set((docs / PAGES).glob("*.md")) - set(wanted) if (docs / PAGES).is_dir() else set()
    differ = {p for p, text in wanted.items() if not p.is_file() or p.read_text() != text}
    return sorted(differ | extra)


def write(wanted: Mapping[Path, str], docs: Path = DOCS) -> None:
    """Write every page and remove the CPU pages no result backs any more."""
    for path in stale(wanted, docs):
        if path in wanted:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted[path])
        else:
            path.unlink()
