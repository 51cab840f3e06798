"""What a suite is to the harness: a name, a one-line description, its own options, and a
run that prints its report and hands back its figures."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

Row = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a run of a suite found.

    `report` is every figure, in the suite's own shape (its table is printed from it); `rows`
    is one flat record per row of the suite, the row's name first, then its headline figures
    (the docs' tables are rendered from them); `ok` is False when a row failed.
    """

    report: dict[str, Any]
    rows: list[Row]
    ok: bool = True


@dataclasses.dataclass(frozen=True)
class Suite:
    """One benchmark suite.

    `run(args, settings)` gets the parsed options (the harness's `--quick` among them) and the
    `--set` settings, prints its table on stdout and returns the `Outcome`.
    """

    name: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Mapping[str, str]], Outcome]
