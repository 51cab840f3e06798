"""`volfefe reclassify`: replace results made by another model_version than the configured one.

The command over `volfefe.classify.intelligence.reclassify`, a batch at a time so progress shows
and an interrupted run keeps what it wrote (a re-run takes what is still outdated).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from volfefe.classify.intelligence import reclassify
from volfefe.cli.classify import DEFAULT_LIMIT, boot_stage
from volfefe.cli.common import echo_json, with_model
from volfefe.cli.params import IdList
from volfefe.cli.progress import is_failure, make_reporter
from volfefe.config import Settings
from volfefe.errors import ContentNotFound, VolfefeError
from volfefe.result import Classification
from volfefe.store.connect import connect, resolve_database_url
from volfefe.store.migrate import require_current_schema
from volfefe.store.posts import contents_by_ids, outdated
from volfefe.supervisor.classifier import Classifier


@click.command("reclassify")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help=f"At most N outdated posts, oldest first [default: {DEFAULT_LIMIT}].",
)
@click.option("--all", "all_", is_flag=True, help="Every post classified by another model.")
@click.option("--ids", type=IdList(), help="These posts, whatever model classified them.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def reclassify_command(
    ctx: click.Context, limit: int | None, all_: bool, ids: list[int] | None, as_json: bool
) -> None:
    """Classify again the posts whose result came from another model_version (another model,
    revision, backend or quantisation) and replace those results.

    Exit status 1 when some post failed or an id does not exist.
    """
    given = [name for name, value in (("--limit", limit), ("--all", all_), ("--ids", ids)) if value]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} cannot be used together")
    settings: Settings = ctx.obj
    url = resolve_database_url(settings)
    reporter = make_reporter(
        sys.stderr, verbose=ctx.meta.get("verbose", 0) > 0, quiet=ctx.meta.get("quiet", False)
    )
    outcomes: dict[int, Classification | VolfefeError] = {}
    started = time.monotonic()
    settings = with_model(settings)
    with connect(url) as conn, Classifier(settings) as clf:
        require_current_schema(conn)
        reporter.stage(boot_stage(settings))
        try:
            version = clf.model_version  # starts the children
        except BaseException:
            reporter.stop()
            raise
        if ids is not None:
            found = {row.id for row in contents_by_ids(conn, ids) if row.has_text}
            outcomes.update({i: ContentNotFound(i) for i in ids if i not in found})
            targets = [i for i in ids if i in found]
        else:
            rows = outdated(conn, version, limit=None if all_ else (limit or DEFAULT_LIMIT))
            targets = [row.id for row in rows]
        reporter.start(len(targets) + len(outcomes))
        try:
            for content_id, exc in outcomes.items():
                reporter.post(content_id, exc, 0.0)
            for start in range(0, len(targets), settings.batch_size):
                chunk = targets[start : start + settings.batch_size]
                sent = time.monotonic()
                done = reclassify(conn, clf, ids=chunk)
                ms = (time.monotonic() - sent) * 1000 / max(1, len(chunk))
                for content_id in chunk:
                    outcome = done.get(content_id) or ContentNotFound(
                        content_id
                    )  # deleted meanwhile
                    outcomes[content_id] = outcome
                    reporter.post(content_id, outcome, ms)
        finally:
            reporter.stop()
    failed = {i: o for i, o in outcomes.items() if is_failure(o)}
    summary: dict[str, Any] = {
        "model_version": version,
        "total": len(outcomes),
        "reclassified": sum(isinstance(o, Classification) for o in outcomes.values()),
        "failed": len(failed),
        "failures": [
            {"content_id": i, "reason": f"{type(e).__name__}: {e}"}
            for i, e in sorted(failed.items())
        ],
        "elapsed_s": round(time.monotonic() - started, 3),
    }
    if as_json:
        echo_json(summary)
    else:
        click.echo(
            f"Done: {summary['total']} posts, {summary['reclassified']} reclassified with "
            f"{version}, {summary['failed']} failed"
        )
        for failure in summary["failures"]:
            click.echo(f"  content_id={failure['content_id']}: {failure['reason']}")
    ctx.exit(1 if failed else 0)
