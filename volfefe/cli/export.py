"""`volfefe export`: stored posts and their results as CSV or JSON Lines, for other tools."""

from __future__ import annotations

import contextlib
import csv
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click
import orjson

from volfefe.cli.common import current_settings
from volfefe.cli.params import Timestamp
from volfefe.result import SENTIMENTS
from volfefe.store.connect import connect
from volfefe.store.migrate import require_current_schema
from volfefe.store.report import EXPORT_FIELDS, ExportFilter, export_rows


@click.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="JSON Lines (one object a line) or CSV with a header.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE instead of stdout.",
)
@click.option("--sentiment", type=click.Choice(SENTIMENTS), help="Only this sentiment.")
@click.option("--model-version", help="Only results of this model_version.")
@click.option(
    "--min-confidence", type=click.FloatRange(0.0, 1.0), help="Only results this confident."
)
@click.option(
    "--since",
    type=Timestamp(),
    help="Only posts published at or after this ISO 8601 date or time (UTC unless it has a "
    "zone, e.g. 2025-12-20T08:00:00+02:00).",
)
@click.option(
    "--until",
    type=Timestamp(),
    help="Only posts published before this date or time (UTC unless it has a zone).",
)
@click.option(
    "--unclassified",
    is_flag=True,
    help="Also export the posts that have no result yet (their result fields empty); "
    "without it, only classified posts are exported.",
)
def results_export_command(
    fmt: str,
    output: Path | None,
    sentiment: str | None,
    model_version: str | None,
    min_confidence: float | None,
    since: datetime | None,
    until: datetime | None,
    unclassified: bool,
) -> None:
    """Export posts with their classification, oldest id first.

    Fields: content_id, source, external_id, author, published_at, text, url, sentiment,
    confidence, model_version, classified_at (times in ISO 8601). Result filters
    (--sentiment, --model-version, --min-confidence) leave out unclassified posts.
    """
    if unclassified and (sentiment or model_version or min_confidence is not None):
        raise click.UsageError(
            "--unclassified cannot be used with --sentiment, --model-version or --min-confidence"
        )
    filters = ExportFilter(
        sentiment=sentiment,
        model_version=model_version,
        min_confidence=min_confidence,
        since=since,
        until=until,
        unclassified=unclassified,
    )
    with connect(current_settings()) as conn:
        require_current_schema(conn)
        # Closed before the connection, even when the reader goes away (`| head`), so the
        # cursor's transaction ends first.
        with contextlib.closing(export_rows(conn, filters)) as rows:
            if output is None:
                count = _write(rows, fmt, sys.stdout)
            else:
                with output.open("w", encoding="utf-8", newline="") as out:
                    count = _write(rows, fmt, out)
    click.echo(f"exported {count} posts", err=True)


def _write(rows: Any, fmt: str, out: IO[str]) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
            count += 1
    else:
        for row in rows:
            out.write(orjson.dumps(row).decode() + "\n")
            count += 1
    out.flush()
    return count


def _csv_value(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value
