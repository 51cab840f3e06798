"""`volfefe jobs ...`: background classification (enqueue, worker, status, retry, prune)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import click
import orjson
from psycopg.conninfo import conninfo_to_dict

from volfefe.cli.common import plural, with_model
from volfefe.cli.params import Age, IdList
from volfefe.cli.terminal import for_terminal
from volfefe.config import Settings
from volfefe.errors import ContentNotFound, JobNotFound
from volfefe.jobs.queue import enqueue, failed_job_ids, prune, retry, status, unclassified_ids
from volfefe.sinks.deliver import Deliverer
from volfefe.store.connect import connect, describe_target, resolve_database_url
from volfefe.store.migrate import require_current_schema
from volfefe.store.posts import contents_by_ids


@click.group("jobs")
def jobs_group() -> None:
    """Background classification jobs (queue ml_classification)."""


@jobs_group.command("enqueue")
@click.option("--all", "all_", is_flag=True, help="Every unclassified post.")
@click.option("--ids", type=IdList(), help="These posts, e.g. 1,2,3.")
@click.option("--limit", type=click.IntRange(min=1), help="The N oldest unclassified posts.")
@click.option("--schedule-in", type=click.FloatRange(min=0), help="Run in SECONDS from now.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def enqueue_command(
    settings: Settings,
    all_: bool,
    ids: list[int] | None,
    limit: int | None,
    schedule_in: float | None,
    as_json: bool,
) -> None:
    """Queue one classification job per post; posts with a waiting or running job (and, for
    --all and --limit, posts classified meanwhile) are reported as already queued."""
    if sum(bool(x) for x in (all_, ids, limit)) != 1:
        raise click.UsageError("give exactly one of --all, --ids or --limit")
    with connect(resolve_database_url(settings)) as conn:
        require_current_schema(conn)
        missing: list[int] = []
        if ids:  # a job for a post that does not exist could only fail later
            found = {row.id for row in contents_by_ids(conn, ids)}
            missing = [i for i in ids if i not in found]
        targets = [i for i in ids if i not in missing] if ids else unclassified_ids(conn, limit)
        # --all and --limit choose their posts first: one classified in between is skipped.
        report = enqueue(conn, targets, schedule_in=schedule_in, unclassified_only=not ids)
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    "queued": len(report.queued),
                    "already_queued": report.already_queued,
                    "not_found": missing,
                }
            ).decode()
        )
    else:
        click.echo(f"queued {len(report.queued)}, already queued {len(report.already_queued)}")
    for content_id in missing:
        click.echo(f"{ContentNotFound.__name__}: {ContentNotFound(content_id)}", err=True)
    if missing:
        click.get_current_context().exit(1)


@jobs_group.command("worker")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Jobs in flight at once [env VOLFEFE_JOBS_CONCURRENCY; default batch size x "
    "(workers + 1)].",
)
@click.option(
    "--no-deliver",
    is_flag=True,
    help="Do not send results to the sinks here (run `volfefe deliver` elsewhere).",
)
@click.pass_obj
def worker_command(settings: Settings, concurrency: int | None, no_deliver: bool) -> None:
    """Run jobs until SIGTERM or Ctrl-C (a second signal stops at once); unless
    --no-deliver, also send stored results to the sinks (as `volfefe deliver` does).

    Exits 3 (PoolBroken) when the classifier cannot be rebuilt VOLFEFE_JOBS_MAX_REBUILDS
    times in a row, and 2 (ConfigError) on a bad setting such as a cron expression, or when
    its children can no longer start (the jobs in flight come back later).
    """
    from volfefe.jobs.app import check_crons  # procrastinate is only needed here
    from volfefe.jobs.logs import install_job_logging
    from volfefe.jobs.runner import QUEUES

    check_crons(settings)  # a bad cron is a ConfigError now, never a restart loop
    quiet = bool(click.get_current_context().meta.get("quiet", False))
    install_job_logging(quiet=quiet)
    url = resolve_database_url(settings)
    with connect(url) as conn:
        require_current_schema(conn)
    settings = with_model(settings)
    slots = concurrency or settings.job_slots
    if not quiet:
        click.echo(f"jobs worker: {_startup(settings, url, slots, QUEUES)}", err=True)
    asyncio.run(work_and_deliver(settings, url, slots, deliver=not no_deliver))


async def work_and_deliver(settings: Settings, url: str, slots: int, *, deliver: bool) -> None:
    """The job worker and, beside it on the same loop, the sinks' delivery (stopped once the
    worker has stopped): a slow receiver waits on its own task, never on a job."""
    from volfefe.jobs.runner import run_worker

    if not deliver:
        await run_worker(settings, url, slots)
        return
    stopping = asyncio.Event()
    delivery = asyncio.create_task(Deliverer(url, settings).run(stopping), name="volfefe deliver")
    try:
        await run_worker(settings, url, slots)
    finally:
        stopping.set()
        await delivery


def _startup(settings: Settings, url: str, slots: int, queues: tuple[str, ...]) -> str:
    """What a starting job worker says: where it listens (no password), how much it runs
    at once, with what, from which queues."""
    where = describe_target(url)
    if conninfo_to_dict(url).get("password"):
        where += ", password ***"
    backend = settings.resolved_backend
    if settings.quantize != "none":
        backend += f" {settings.quantize}"
    return (
        f"{where}; concurrency {slots}; backend {backend}, model {settings.model}; "
        f"queues {', '.join(queues)}"
    )


@jobs_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--failures",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="How many recent failures to list.",
)
@click.pass_obj
def status_command(settings: Settings, as_json: bool, failures: int) -> None:
    """Counts by queue and state, the oldest waiting job's age, recent failures."""
    with connect(resolve_database_url(settings)) as conn:
        require_current_schema(conn)
        report = status(conn, failures)
    if as_json:
        click.echo(orjson.dumps(report).decode())
        return
    for queue, states in sorted(report["queues"].items()):
        counts = ", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "empty"
        click.echo(f"{queue}: {counts}")
    age = report["oldest_waiting_s"]
    click.echo(f"oldest waiting job: {age:.1f} s" if age is not None else "no job waiting")
    for failure in report["failures"]:
        click.echo(
            f"  job {failure['job_id']} post {failure['content_id']} attempt "
            f"{failure['attempt']} {failure['outcome']}: "
            + for_terminal(failure["error"], keep_newlines=False)
        )
    click.echo(f"quarantined posts: {report['quarantined']}")
    for post in report["quarantined_posts"]:
        click.echo(
            f"  post {post['content_id']} since {post['quarantined_at']}: "
            + for_terminal(post["reason"], keep_newlines=False)
        )


@jobs_group.command("retry")
@click.argument("job_id", type=int, required=False)
@click.option("--failed", "all_failed", is_flag=True, help="Every failed job.")
@click.pass_obj
def retry_command(settings: Settings, job_id: int | None, all_failed: bool) -> None:
    """Queue failed job JOB_ID (or every failed job) again."""
    if (job_id is None) == (not all_failed):
        raise click.UsageError("give a JOB_ID or --failed")
    with connect(resolve_database_url(settings)) as conn:
        require_current_schema(conn)
        outcomes = retry(conn, failed_job_ids(conn) if all_failed else [job_id or 0])
    if all_failed and not outcomes:
        click.echo("no failed jobs to retry")
    for jid, outcome in outcomes.items():
        if outcome == "not found":  # an error, printed the one way errors are
            click.echo(f"{JobNotFound.__name__}: {JobNotFound(jid)}", err=True)
        else:
            click.echo(f"job {jid}: {outcome}")
    if job_id is not None and outcomes.get(job_id) != "retried":
        raise SystemExit(1)


@jobs_group.command("prune")
@click.option(
    "--older-than",
    type=Age(),
    default="7d",
    show_default=True,
    help="Age of finished jobs to delete.",
)
@click.pass_obj
def prune_command(settings: Settings, older_than: timedelta) -> None:
    """Delete finished jobs (succeeded, failed, cancelled) older than --older-than."""
    with connect(resolve_database_url(settings)) as conn:
        require_current_schema(conn)
        deleted = prune(conn, older_than)
    click.echo(f"deleted {plural(deleted, 'finished job')}")
