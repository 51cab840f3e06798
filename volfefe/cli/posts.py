"""Post commands: `import` posts, `show` one, and `stats` over all of them.

`VolfefeError`s propagate: the main CLI prints `TypeName: message` and exits with `exit_code`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from volfefe.cli.common import current_settings, plural
from volfefe.cli.terminal import for_terminal
from volfefe.jobs.queue import enqueue as enqueue_posts
from volfefe.result import SENTIMENTS
from volfefe.store.connect import connect
from volfefe.store.importer import SUFFIXES, import_posts
from volfefe.store.migrate import require_current_schema
from volfefe.store.posts import get_classification_by_content, get_content, stats
from volfefe.store.report import GROUPS, breakdown


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--enqueue",
    is_flag=True,
    help="Queue a classification job for each new or changed post, in the same "
    "transaction as the post.",
)
def import_command(file: Path, enqueue: bool) -> None:
    """Import posts from FILE (.jsonl, .ndjson, .json or .csv).

    Prints the counts; each rejected row goes to stderr as `line N: reason`, and the exit
    code is then 1. Importing the same file again changes nothing.
    """
    if file.suffix.lower() not in SUFFIXES:
        raise click.BadParameter(f"expected one of {', '.join(SUFFIXES)}", param_hint="FILE")
    queued: list[int] = []
    already: list[int] = []  # queued by the auto-enqueue trigger in this same transaction

    def enqueue_jobs(cur: Any, ids: list[int]) -> None:
        report = enqueue_posts(cur.connection, ids)
        queued.extend(report.queued)
        already.extend(report.already_queued)

    with connect(current_settings()) as conn:
        require_current_schema(conn)
        report = import_posts(conn, file, on_inserted=enqueue_jobs if enqueue else None)
    click.echo(report.summary())
    if enqueue:
        extra = f", {len(already)} already queued" if already else ""
        click.echo(f"queued {plural(len(queued), 'classification job')}{extra}")
    for line, reason in report.rejected:
        click.echo(f"line {line}: {for_terminal(reason)}", err=True)
    if report.rejected:
        click.get_current_context().exit(1)


@click.command("stats")
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.9,
    show_default=True,
    help="Confidence at or above which a classification counts as high confidence.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--by",
    type=click.Choice(sorted(GROUPS)),
    help="Sentiment counts per day of publication (UTC) or per model_version instead.",
)
def stats_command(threshold: float, as_json: bool, by: str | None) -> None:
    """Count posts, classified posts, sentiments and high-confidence results."""
    if by is not None:
        print_breakdown(by, as_json)
        return
    with connect(current_settings()) as conn:
        require_current_schema(conn)
        numbers = stats(conn, threshold)
    if as_json:
        click.echo(orjson.dumps(numbers, option=orjson.OPT_INDENT_2).decode())
        return
    Console().print(stats_table(numbers))


@click.command("show")
@click.argument("content_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def show_command(content_id: int, as_json: bool) -> None:
    """Show post ID and its classification (an unknown ID is an error)."""
    with connect(current_settings()) as conn:
        require_current_schema(conn)
        content = get_content(conn, content_id)
        found = get_classification_by_content(conn, content_id)
    if as_json:
        both = {"content": content, "classification": found}
        click.echo(orjson.dumps(both, option=orjson.OPT_INDENT_2).decode())
        return
    when = content.published_at.isoformat() if content.published_at else "unknown date"
    safe = for_terminal
    click.echo(f"#{content.id}  {safe(content.source)}/{safe(content.external_id)}  {when}")
    click.echo(f"author: {safe(content.author or '-')}    url: {safe(content.url or '-')}")
    click.echo(safe(content.text))
    if content.quarantined_at is not None:
        click.echo(
            f"quarantined: since {content.quarantined_at.isoformat()}: "
            f"{safe(content.quarantine_reason or '')} "
            f"(force a try: classify --ids {content.id})"
        )
    if found is None:
        click.echo("classification: none")
        return
    raw = found.meta.get("raw_scores", {})
    scores = ", ".join(f"{name} {raw[name]:.3f}" for name in SENTIMENTS if name in raw)
    click.echo(
        f"classification: {found.sentiment} ({found.confidence:.3f}) by {found.model_version}"
        + (f"; scores: {scores}" if scores else "")
    )


def print_breakdown(by: str, as_json: bool) -> None:
    """`stats --by day|model_version`: one row per group of classified posts."""
    with connect(current_settings()) as conn:
        require_current_schema(conn)
        rows = breakdown(conn, by)
    if as_json:
        click.echo(orjson.dumps({"by": by, "rows": rows}, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=f"volfefe results by {by.replace('_', ' ')}")
    table.add_column(by)
    for name in ("total", *SENTIMENTS, "mean confidence"):
        table.add_column(name, justify="right")
    for row in rows:
        counts = [str(row[name]) for name in ("total", *SENTIMENTS)]
        key = row["key"] if row["key"] is not None else "(no date)"
        table.add_row(key, *counts, f"{row['mean_confidence']:.3f}")
    Console().print(table)


def stats_table(numbers: dict[str, Any]) -> Table:
    """The `stats()` dict as a rich table with percentages.

    Post counts are shares of all posts; sentiments and high confidence, of classified posts.
    """
    table = Table(title="volfefe posts")
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_column("%", justify="right")
    total, classified = numbers["total"], numbers["classified"]
    for label, key in (
        ("classified", "classified"),
        ("unclassified", "unclassified"),
        ("quarantined", "quarantined"),
        ("empty text", "empty_text"),
    ):
        table.add_row(label, str(numbers[key]), _percent(numbers[key], total))
    table.add_row("total", str(total), _percent(total, total), end_section=True)
    for sentiment in SENTIMENTS:
        count = numbers["distribution"][sentiment]
        table.add_row(sentiment, str(count), _percent(count, classified))
    label = f"confidence >= {numbers['threshold']:g}"
    table.add_row(
        label, str(numbers["high_confidence"]), _percent(numbers["high_confidence"], classified)
    )
    return table


def _percent(part: int, whole: int) -> str:
    """`part` as a percentage of `whole`, or "-" when there is no whole."""
    return f"{100 * part / whole:.1f}" if whole else "-"
