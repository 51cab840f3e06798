"""What a harness run found: faults by kind, posts, processes, violations; as a table or JSON."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from volfefe.chaos.schedule import FAULT_KINDS


@dataclass
class Report:
    """Counts and violations of one run. `ok` is what the exit status says."""

    seed: int
    posts: int
    poison: int
    minutes: float
    faults_scheduled: Counter[str] = field(default_factory=Counter)
    faults_injected: Counter[str] = field(default_factory=Counter)
    faults_no_target: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)  # seconds: setup, chaos, drain...
    notes: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (what `--json PATH` writes)."""
        data = asdict(self)
        data["faults"] = {
            kind: {
                "scheduled": self.faults_scheduled[kind],
                "injected": self.faults_injected[kind],
                "no_target": self.faults_no_target[kind],
            }
            for kind in FAULT_KINDS
            if self.faults_scheduled[kind]
        }
        for key in ("faults_scheduled", "faults_injected", "faults_no_target"):
            del data[key]
        data["ok"] = self.ok
        return data

    def table(self) -> str:
        """A plain-text table for a terminal or a CI log."""
        lines = [
            f"chaos: seed {self.seed}, {self.posts} posts ({self.poison} poison), "
            f"{self.minutes:g} min of faults",
            "",
            f"{'fault':<18} {'scheduled':>9} {'injected':>9} {'no target':>9}",
        ]
        for kind in FAULT_KINDS:
            if self.faults_scheduled[kind]:
                lines.append(
                    f"{kind:<18} {self.faults_scheduled[kind]:>9} "
                    f"{self.faults_injected[kind]:>9} {self.faults_no_target[kind]:>9}"
                )
        total = sum(self.faults_scheduled.values())
        lines.append(
            f"{'total':<18} {total:>9} {sum(self.faults_injected.values()):>9} "
            f"{sum(self.faults_no_target.values()):>9}"
        )
        lines += ["", f"{'outcome':<46} {'value':>9}"]
        lines += [f"{name:<46} {value!s:>9}" for name, value in self.outcomes.items()]
        if self.phases:
            lines.append("seconds: " + ", ".join(f"{k} {v:g}" for k, v in self.phases.items()))
        if self.notes:
            lines += ["", "notes:"] + [f"  - {note}" for note in self.notes]
        lines += ["", f"violations: {len(self.violations)}"]
        lines += [f"  - {v}" for v in self.violations]
        return "\n".join(lines)
