"""Comparison tables: alternating runs of the realtime suite, one arm per setting, as the
docs show them (README.md, docs/deploying.md), rendered from committed results only.

A comparison is a JSON file under `benches/results/<cpu-slug>/comparisons/`:

```
{"command": "python -m benches run realtime --backends onnx_int8 --capacity 70",
 "arms": [{"label": "default", "results": ["realtime-2026-12-06T081500Z.json", ...]},
          {"label": "`VOLFEFE_PREEMPT=layers`", "results": [...]}]}
```

Each arm's runs alternate with the other arms' in one session (`--set` differs, nothing
else). A cell is the median over the arm's runs; a ratio (`x`) is taken within each run (a
class's p99 under load over its own idle p99) or against the first arm's median drain, then
the median. A page shows a table where it holds

    <!-- comparison: amd-epyc/comparisons/NAME.json -->
    ...
    <!-- end comparison -->

and `python -m benches render` rewrites what is between the two lines.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from volfefe.supervisor.latency import LENGTH_CLASSES

from .results import RESULTS
from .tables import markdown_table

BLOCK = re.compile(
    r"(?P<open><!-- comparison: (?P<name>[\w./-]+\.json) -->\n)(?P<body>.*?)"
    r"(?P<close><!-- end comparison -->)",
    re.DOTALL,
)
_SHORT, _MEDIUM = (most for _, most in LENGTH_CLASSES if most is not None)
CLASSES = (
    ("short", f"short (≤ {_SHORT} tokens)"),
    ("medium", f"medium ({_SHORT + 1}-{_MEDIUM} tokens)"),
    ("long", f"long (> {_MEDIUM} tokens)"),
)
LOADS = ("load_50", "load_90")
IDEAL_SPLIT = "ideal_by_class"
IDEAL_NOTE = (
    "; ideal: the p99 of an ideal short-first scheduler (free, instant preemption, nothing "
    "but bare inference) on the same arrivals, x the measured idle p99"
)
Figures = Callable[[Mapping[str, Any]], float | None]


def backend_of(result: Mapping[str, Any]) -> Mapping[str, Any]:
    """The one backend's report of a realtime result (a comparison runs one backend)."""
    [report] = result["report"]["backends"].values()
    return dict(report)


def by_class(phase: str, length: str, figure: str, split: str = "by_class") -> Figures:
    """A class's figure in a phase, e.g. short posts' p99 at 50 % load; `split`
    "ideal_by_class" for the ideal scheduler's on the same arrivals (None in runs before it)."""

    def get(report: Mapping[str, Any]) -> float | None:
        value = report[phase].get(split, {}).get(length, {}).get(figure)
        return None if value is None else float(value)

    return get


def over_idle(phase: str, length: str, split: str = "by_class") -> Figures:
    """A class's p99 in a phase over its own idle p99, in the same run."""

    def get(report: Mapping[str, Any]) -> float | None:
        loaded = by_class(phase, length, "p99_ms", split)(report)
        idle = by_class("idle", length, "p99_ms")(report)
        return None if loaded is None or not idle else loaded / idle

    return get


def median_of(reports: Sequence[Mapping[str, Any]], figure: Figures) -> float | None:
    """The median of a figure over runs (None when no run has it)."""
    values = [v for v in (figure(r) for r in reports) if v is not None]
    return statistics.median(values) if values else None


def ms(value: float | None) -> str:
    """Milliseconds as a table shows them: three significant figures.

    >>> ms(9.284), ms(96.83), ms(1161.27), ms(None)
    ('9.3', '96.8', '1161', 'n/a')
    """
    if value is None:
        return "n/a"
    return f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def times(value: float | None, digits: int = 1) -> str:
    """A ratio: `3.2x`.

    >>> times(3.2149), times(0.905, digits=2), times(None)
    ('3.2x', '0.91x', 'n/a')
    """
    return "n/a" if value is None else f"{value:.{digits}f}x"


def table(arms: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> list[str]:
    """The comparison's Markdown table: per arm and class, p50 / p99 idle, at 50 % and at
    90 % load (the p99 also as x its idle p99), the ideal scheduler's p99 x idle p99 on the
    same arrivals at both loads (where a run has it), and the jobs drain (x the first arm's)."""
    ideal = has_ideal(arms)
    header = ["posts", "setting", "runs", "idle", "50 % load", "90 % load"]
    header += ["ideal 50 % / 90 %"] * ideal + ["jobs drain /s"]
    first = [backend_of(r) for r in arms[0][1]]
    base = median_of(first, lambda r: float(r["jobs_posts_per_s"]))
    rows = []
    for length, name in CLASSES:
        for label, results in arms:
            reports = [backend_of(r) for r in results]
            drain = median_of(reports, lambda r: float(r["jobs_posts_per_s"]))
            cells = [name if label == arms[0][0] else length, label, str(len(reports))]
            for phase in ("idle", "load_50", "load_90"):
                p50 = ms(median_of(reports, by_class(phase, length, "p50_ms")))
                p99 = ms(median_of(reports, by_class(phase, length, "p99_ms")))
                cell = f"{p50} / {p99}"
                if phase != "idle":
                    cell += f" ({times(median_of(reports, over_idle(phase, length)))})"
                cells.append(cell)
            if ideal:
                ratios = [median_of(reports, over_idle(p, length, IDEAL_SPLIT)) for p in LOADS]
                cells.append(" / ".join(times(r) for r in ratios))
            ratio = None if drain is None or not base else drain / base
            cells.append(f"{drain:.1f} ({times(ratio, 2)})" if drain is not None else "n/a")
            rows.append(cells)
    return markdown_table(header, "lll" + "r" * (len(header) - 3), rows)


def has_ideal(arms: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> bool:
    """Whether any run of the comparison has the ideal scheduler's figures."""
    return any(IDEAL_SPLIT in backend_of(r)["load_50"] for _, results in arms for r in results)


def render(name: str, results_dir: Path = RESULTS) -> list[str]:
    """The lines between a block's markers: the command, the result files, the table."""
    manifest_path = results_dir / name
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    folder = manifest_path.parent.parent  # <cpu-slug>/comparisons/NAME.json
    arms = [
        (
            str(arm["label"]),
            [json.loads((folder / f).read_text(encoding="utf-8")) for f in arm["results"]],
        )
        for arm in manifest["arms"]
    ]
    runs = sorted(r["date"] for _, results in arms for r in results)
    commits = sorted({str(r["commit"])[:12] for _, results in arms for r in results})
    return [
        f"`{manifest['command']}` [`--set NAME=VALUE` per arm], the arms alternating in one "
        f"session ({runs[0][:16]} to {runs[-1][:16]} UTC, commit {', '.join(commits)}; "
        f"`benches/results/{name}` lists the runs), p50 / p99 in ms, medians over the runs"
        f"{IDEAL_NOTE * has_ideal(arms)}:",
        "",
        *table(arms),
        "",
    ]


def rewrite(text: str, results_dir: Path = RESULTS) -> str:
    """`text` with every comparison block rendered afresh."""

    def block(match: re.Match[str]) -> str:
        body = "\n".join(render(match["name"], results_dir))
        return f"{match['open']}{body}\n{match['close']}"

    return BLOCK.sub(block, text)
