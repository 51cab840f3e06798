"""`volfefe chaos`: the crash-isolation harness (faults from a seeded schedule, then checks).

Exit status: 0 when every check held, 1 on any violation (listed in the table).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
import orjson

from volfefe.chaos.harness import ChaosOptions, Harness
from volfefe.chaos.schedule import FAULT_KINDS, parse_kinds
from volfefe.config import Settings

POSITIVE = click.FloatRange(min=0, min_open=True)


class FaultKinds(click.ParamType):  # type: ignore[type-arg]
    """`all` or a comma list of fault kinds."""

    name = "kinds"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        """Parse the list, or fail with a usage error naming the unknown kind."""
        if isinstance(value, tuple):
            return value
        try:
            return parse_kinds(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command("chaos")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the schedule.")
@click.option("--posts", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--poison",
    type=click.IntRange(min=0),
    help="Poison posts among them [default: posts // 50, at least 1].",
)
@click.option(
    "--minutes", type=POSITIVE, default=1.0, show_default=True, help="Length of the chaos phase."
)
@click.option(
    "--faults",
    type=FaultKinds(),
    default="all",
    show_default=True,
    help=f"all, or a comma list of: {', '.join(FAULT_KINDS)}.",
)
@click.option(
    "--interval", type=POSITIVE, default=5.0, show_default=True, help="Seconds between faults."
)
@click.option(
    "--pause-seconds",
    type=POSITIVE,
    default=10.0,
    show_default=True,
    help="A database pause lasts 1-2 times this.",
)
@click.option(
    "--partition-seconds",
    type=POSITIVE,
    default=30.0,
    show_default=True,
    help="A partition-worker fault cuts the namespaced worker off this long.",
)
@click.option(
    "--child-delay",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds each child reply is delayed (keeps calls in flight with a tiny model).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report as JSON.",
)
@click.option(
    "--keep", is_flag=True, help="Keep the run folder: every process's log, the database."
)
@click.pass_obj
def chaos_command(
    settings: Settings,
    seed: int,
    posts: int,
    poison: int | None,
    minutes: float,
    faults: tuple[str, ...],
    interval: float,
    pause_seconds: float,
    partition_seconds: float,
    child_delay: float,
    json_path: Path | None,
    keep: bool,
) -> None:
    """Inject faults into real classify runs, job workers and a private database, then check
    that nothing was lost, doubled, orphaned or left hanging."""
    options = ChaosOptions(
        seed=seed,
        posts=posts,
        minutes=minutes,
        poison=max(1, posts // 50) if poison is None else poison,
        kinds=faults,
        interval=interval,
        pause_seconds=pause_seconds,
        partition_seconds=partition_seconds,
        child_delay=child_delay,
        keep=keep,
    )
    # pgserver logs every pg_ctl call at INFO; with -v the faults' own lines should stand out.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    report = Harness(settings, options).run()
    click.echo(report.table())
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2))
    sys.exit(0 if report.ok else 1)
