"""The one entry point of the benches.

    python -m benches list
    python -m benches run SUITE [--quick] [--json PATH] [--save] [--set VOLFEFE_NAME=VALUE ...]
                                [the suite's own options; `run SUITE --help` lists them]
    python -m benches render [--check]

`run` prints the suite's table on stdout (progress goes to stderr) and, with `--json PATH`,
writes the result JSON there; `--save` writes it under benches/results/<cpu-slug>/, where
committed results live. `render` writes docs/benchmarks.md and one page per CPU from the
committed results; `--check` only says whether the pages are current (exit 1 when not).
Exit status of `run`: 0 every row ran, 1 a row failed, 2 a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .harness import logs, render, results
from .harness.process import ROOT
from .harness.settings import inherited, parse_setting, settings_of
from .suites import SUITES

HARNESS_OPTIONS = ("suite", "command", "json", "save", "set")


def parser() -> argparse.ArgumentParser:
    """The command line: list, run SUITE (one sub-command per suite), render."""
    top = argparse.ArgumentParser(
        prog="python -m benches", description=(__doc__ or "").splitlines()[0]
    )
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the suites, one a line")
    run = commands.add_parser("run", help="run one suite")
    suites = run.add_subparsers(dest="suite", required=True, metavar="SUITE")
    for suite in SUITES.values():
        sub = suites.add_parser(suite.name, help=suite.description, description=suite.description)
        sub.add_argument("--quick", action="store_true", help="tiny model, few posts (CI)")
        sub.add_argument("--json", type=Path, help="write the result JSON here")
        sub.add_argument(
            "--save", action="store_true", help="write the result JSON under benches/results/"
        )
        sub.add_argument(
            "--set",
            type=parse_setting,
            action="append",
            default=[],
            metavar="VOLFEFE_NAME=VALUE",
            help="a volfefe setting for every process of the run (repeatable)",
        )
        suite.add_arguments(sub)
    render_cmd = commands.add_parser("render", help="write the benchmark pages under docs/")
    render_cmd.add_argument("--check", action="store_true", help="exit 1 if the pages are stale")
    return top


def run_suite(args: argparse.Namespace) -> int:
    """Run one suite, write its result JSON when asked; 1 when a row failed."""
    suite = SUITES[args.suite]
    if args.save and args.quick:
        raise SystemExit("benches: --save keeps real runs only; --quick figures mean nothing")
    logs.setup(suite.name)
    environment = inherited(os.environ)
    settings = settings_of(args.set)
    commit = results.git_commit()  # the code that runs, whatever is committed meanwhile
    outcome = suite.run(args, settings)
    options = {k: v for k, v in vars(args).items() if k not in HARNESS_OPTIONS}
    result = results.envelope(suite.name, commit, options, settings, environment, outcome)
    targets = [args.json] if args.json else []
    if args.save:
        targets.append(results.saved_path(result))
    for path in targets:
        results.write(path, result)
        logs.log(f"result JSON written to {path}")
    return 0 if outcome.ok else 1


def render_pages(check: bool) -> int:
    """Write the benchmark pages, or with `check` list the stale ones (1 when there are)."""
    wanted = render.pages({name: suite.description for name, suite in SUITES.items()})
    if not check:
        render.write(wanted)
        return 0
    stale = render.stale(wanted)
    for path in stale:
        print(f"stale: {path.relative_to(ROOT)} (run `python -m benches render`)")
    return 1 if stale else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and do it."""
    args = parser().parse_args(argv)
    if args.command == "list":
        for suite in SUITES.values():
            print(f"{suite.name:<12} {suite.description}")
        return 0
    if args.command == "render":
        return render_pages(args.check)
    return run_suite(args)


if __name__ == "__main__":
    sys.exit(main())
