"""`volfefe classify`: classify stored posts that have no result yet.

Exit status: 0 all succeeded, 1 some failed (or the database went away mid-run), 2 usage
errors, 130 interrupted. The summary is printed also after Ctrl-C.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from volfefe.cli.params import IdList
from volfefe.cli.progress import BarReporter, LineReporter
from volfefe.cli.terminal import for_terminal
from volfefe.config import Settings
from volfefe.errors import VolfefeError
from volfefe.result import SENTIMENTS
from volfefe.store.classify_run import ClassifyRun, Reporter, RunSummary
from volfefe.store.connect import connect, resolve_database_url
from volfefe.store.intelligence import classifiable
from volfefe.store.migrate import require_current_schema
from volfefe.store.posts import ContentRow, unclassified
from volfefe.supervisor.classifier import Classifier

PREVIEW_CHARS = 60


@click.command("classify")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Classify at most N unclassified posts, oldest first.",
)
@click.option("--all", "all_", is_flag=True, help="Classify every unclassified post.")
@click.option("--ids", type=IdList(), help="Classify these posts, e.g. 1,2,3.")
@click.option("--dry-run", is_flag=True, help="List what would be classified; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def classify_command(
    ctx: click.Context, limit: int, all_: bool, ids: list[int] | None, dry_run: bool, as_json: bool
) -> None:
    """Classify stored posts in batches and store each result once.

    Progress goes to stderr (a bar on a terminal; one line per post otherwise or with -v);
    the summary goes to stdout.
    """
    if all_ and ids:
        raise click.UsageError("--all and --ids cannot be used together")
    settings: Settings = ctx.obj
    url = resolve_database_url(settings)
    with connect(url) as conn:
        require_current_schema(conn)
        targets, early = _select(conn, ids, None if all_ else limit)
    if dry_run:
        for row in targets:
            preview = for_terminal(" ".join(row.text.split())[:PREVIEW_CHARS])
            quarantined = "  (quarantined: forced try)" if row.quarantined_at else ""
            click.echo(f"{row.id}\t{preview}{quarantined}")
        for content_id, exc in early.items():
            click.echo(f"{content_id}\t(skipped: {for_terminal(str(exc))})")
        return
    # Which posts is decided above; in what order does not matter, so similar lengths go
    # together and batches carry little padding.
    targets.sort(key=lambda row: len(row.text))
    reporter = _reporter(ctx.meta.get("verbose", 0) > 0)
    with Classifier(settings) as clf:
        if targets:
            clf.start()  # boot (and any first-use export) is not part of the run's rate
        run = ClassifyRun(
            clf,
            lambda: connect(url, application_name="volfefe classify"),
            reporter,
            batch_size=settings.batch_size,
            in_flight=settings.workers + 1,
        )
        summary = run.run(targets, early)
    _print_summary(summary, as_json)
    sys.exit(summary.exit_code)


def _select(
    conn: Any, ids: list[int] | None, limit: int | None
) -> tuple[list[ContentRow], dict[int, VolfefeError]]:
    """The posts to classify, and those that fail before inference (missing, empty, done)."""
    if ids is None:
        return unclassified(conn, limit=limit), {}
    return classifiable(conn, ids)


def _reporter(verbose: bool) -> Reporter:
    if sys.stderr.isatty() and not verbose:
        from rich.console import Console

        return BarReporter(Console(stderr=True))
    return LineReporter(sys.stderr)


def _print_summary(summary: RunSummary, as_json: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(summary.to_json()).decode())
        return
    rate = summary.succeeded / summary.elapsed_s if summary.elapsed_s else 0.0
    head = "Interrupted" if summary.interrupted else "Done"
    click.echo(
        f"{head}: {summary.total} posts, {summary.succeeded} succeeded, "
        f"{len(summary.failed)} failed, {summary.skipped} skipped "
        f"in {summary.elapsed_s:.1f} s ({rate:.1f} posts/s)"
    )
    parts = []
    for sentiment in SENTIMENTS:
        n = summary.distribution.get(sentiment, 0)
        share = 100 * n / summary.succeeded if summary.succeeded else 0.0
        parts.append(f"{sentiment} {n} ({share:.1f}%)")
    click.echo("Sentiment: " + ", ".join(parts))
    if summary.failed:
        click.echo("Failed:")
        for content_id, reason in sorted(summary.failed.items()):
            click.echo(f"  content_id={content_id}: {for_terminal(reason)}")
    if summary.error:
        click.echo(f"Stopped early: {summary.error}")
