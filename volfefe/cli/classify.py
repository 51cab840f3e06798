"""`volfefe classify`: classify stored posts that have no result yet.

Exit status: 0 all succeeded (or were skipped), 1 some failed, 2 usage errors, 3 the pool
broke (PoolBroken), 4 the database went away mid-run (DatabaseUnavailable), 130 interrupted.
The summary is printed whatever ended the run (Ctrl-C, a broken pool, a lost database); the
error that stopped it then follows on stderr as `TypeName: message`.
"""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from volfefe.classify.intelligence import classifiable
from volfefe.classify.run import ClassifyRun, RunSummary
from volfefe.cli.common import echo_json, with_model
from volfefe.cli.params import IdList
from volfefe.cli.progress import make_reporter
from volfefe.cli.terminal import for_terminal
from volfefe.config import Settings
from volfefe.errors import AlreadyClassified, VolfefeError
from volfefe.result import SENTIMENTS
from volfefe.store.connect import connect, resolve_database_url
from volfefe.store.migrate import require_current_schema
from volfefe.store.posts import ContentRow, unclassified
from volfefe.supervisor.classifier import Classifier

PREVIEW_CHARS = 60


DEFAULT_LIMIT = 10


@click.command("classify")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help=f"Classify at most N unclassified posts, oldest first [default: {DEFAULT_LIMIT}].",
)
@click.option("--all", "all_", is_flag=True, help="Classify every unclassified post.")
@click.option("--ids", type=IdList(), help="Classify these posts, e.g. 1,2,3.")
@click.option("--dry-run", is_flag=True, help="List what would be classified; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (or dry run) as JSON.")
@click.pass_context
def classify_command(
    ctx: click.Context,
    limit: int | None,
    all_: bool,
    ids: list[int] | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Classify stored posts in batches and store each result once.

    Progress goes to stderr (a bar on a terminal; one line per post otherwise or with -v;
    nothing with -q); the summary goes to stdout. A post already classified is skipped; a
    missing or empty one fails (exit status 1). A dry run reports the same.
    """
    given = [name for name, value in (("--limit", limit), ("--all", all_), ("--ids", ids)) if value]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} cannot be used together")
    settings: Settings = ctx.obj
    url = resolve_database_url(settings)
    with connect(url) as conn:
        require_current_schema(conn)
        targets, early = _select(conn, ids, None if all_ else (limit or DEFAULT_LIMIT))
    if dry_run:
        ctx.exit(_dry_run(targets, early, as_json))
    reporter = make_reporter(
        sys.stderr, verbose=ctx.meta.get("verbose", 0) > 0, quiet=ctx.meta.get("quiet", False)
    )
    if targets:
        settings = with_model(settings)
    with Classifier(settings) as clf:
        if targets:
            reporter.stage(boot_stage(settings))
            try:
                clf.start()  # boot (and any first-use export) is not part of the run's rate
            except BaseException:
                reporter.stop()
                raise
        run = ClassifyRun(
            clf,
            lambda: connect(url, application_name="volfefe classify"),
            reporter,
            batch_size=settings.batch_size,
            pass_tokens=settings.forward_tokens,
            in_flight=settings.workers + 1,
        )
        summary = run.run(targets, early)
    _print_summary(summary, as_json)
    if summary.stopped_by is not None:
        raise summary.stopped_by  # the CLI prints it as `TypeName: message` with its status
    ctx.exit(summary.exit_code)


def boot_stage(settings: Settings) -> str:
    """What the progress display says while the children start."""
    children = f"{settings.workers} child{'ren' if settings.workers > 1 else ''}"
    export = " (first use exports it to ONNX)" if settings.resolved_backend == "onnx" else ""
    return f"starting {children} for {settings.model}{export}"


def _select(
    conn: Any, ids: list[int] | None, limit: int | None
) -> tuple[list[ContentRow], dict[int, VolfefeError]]:
    """The posts to classify, and those that fail before inference (missing, empty, done)."""
    if ids is None:
        return unclassified(conn, limit=limit), {}
    return classifiable(conn, ids)


def _dry_run(targets: list[ContentRow], early: dict[int, VolfefeError], as_json: bool) -> int:
    """Say what a real run would do with each post; 1 when some would fail, as the run would."""
    skip: dict[int, VolfefeError] = {
        i: exc for i, exc in early.items() if isinstance(exc, AlreadyClassified)
    }
    fail = {i: exc for i, exc in early.items() if i not in skip}
    if as_json:
        echo_json(
            {
                "classify": [
                    {"content_id": row.id, "preview": _preview(row.text)} for row in targets
                ],
                "skip": [{"content_id": i, "reason": _reason(e)} for i, e in skip.items()],
                "fail": [{"content_id": i, "reason": _reason(e)} for i, e in fail.items()],
            }
        )
    else:
        for row in targets:
            quarantined = "  (quarantined: forced try)" if row.quarantined_at else ""
            click.echo(f"{row.id}\t{for_terminal(_preview(row.text))}{quarantined}")
        for content_id, why in skip.items():
            click.echo(f"{content_id}\t(would skip: {for_terminal(_reason(why))})")
        for content_id, why in fail.items():
            click.echo(f"{content_id}\t(would fail: {for_terminal(_reason(why))})")
    return 1 if fail else 0


def _preview(text: str) -> str:
    return " ".join(text.split())[:PREVIEW_CHARS]


def _reason(exc: VolfefeError) -> str:
    return f"{type(exc).__name__}: {exc}"


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
