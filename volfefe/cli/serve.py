"""`volfefe serve`: the HTTP API and the dashboard on uvicorn (optionally with a job worker).

```
volfefe serve ── schema check ── Classifier.start() (children ready; a child that can never
             │                   start is a ConfigError here: exit 2, nothing listens)
             ├── uvicorn ── the Starlette app (volfefe.web.app): that Classifier, its children
             └── --with-worker: `python -m volfefe jobs worker` as a child process, same settings
                 and environment except what only the web uses (VOLFEFE_API_TOKEN); it also
                 delivers to the sinks unless --no-deliver
```
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys

import click

from volfefe.config import Settings
from volfefe.store.connect import connect, resolve_database_url
from volfefe.store.migrate import require_current_schema
from volfefe.supervisor.classifier import Classifier

LOOPBACK = "127.0.0.1"
WORKER_STOP_EXTRA = 10.0  # seconds past the shutdown grace before the worker is killed
WEB_ONLY_ENV = frozenset({"VOLFEFE_API_TOKEN"})  # secrets a job worker has no use for


@click.command("serve")
@click.option("--host", default=LOOPBACK, show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--with-worker", is_flag=True, help="Also run a job worker (`jobs worker`).")
@click.option(
    "--no-deliver",
    is_flag=True,
    help="With --with-worker: its job worker does not send results to the sinks.",
)
@click.pass_context
def serve_command(
    ctx: click.Context, host: str, port: int, with_worker: bool, no_deliver: bool
) -> None:
    """Serve the JSON API (/api/v1) and the dashboard (/) until SIGTERM or Ctrl-C.

    Write routes need `Authorization: Bearer $VOLFEFE_API_TOKEN`; with no token set the
    server listens on 127.0.0.1 only. The children start before the server listens: exit 2
    (ConfigError) when they can never start, 3 (PoolBroken) when they keep failing to.
    """
    from volfefe.web.server import run  # only this command needs the web stack

    settings: Settings = ctx.obj
    if settings.api_token is None:
        if not is_loopback(host):
            click.echo(f"ignoring --host {host}: no VOLFEFE_API_TOKEN is set", err=True)
            host = LOOPBACK
        click.echo(
            f"no VOLFEFE_API_TOKEN: listening on {host} only; write routes are open to "
            "anyone on this machine",
            err=True,
        )
    url = resolve_database_url(settings)
    with connect(url) as conn:
        require_current_schema(conn)
    classifier = Classifier(settings)
    try:
        # Children ready before the port opens: a model that cannot load stops `serve` here
        # (ConfigError, exit 2) instead of a server that answers 503 forever.
        ready = classifier.start()
        worker = start_worker(ctx, url, deliver=not no_deliver) if with_worker else None
        try:
            run(settings, url, classifier, ready, host, port, ctx.meta.get("verbose", 0))
        finally:
            if worker is not None:
                stop_worker(worker, settings.shutdown_grace + WORKER_STOP_EXTRA)
    finally:
        classifier.close()  # the app closed it already unless uvicorn never started it


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`.

    >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0"), is_loopback("localhost")
    (True, False, True)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start_worker(ctx: click.Context, url: str, *, deliver: bool = True) -> subprocess.Popen[bytes]:
    """`python -m volfefe [the same global options] jobs worker [--no-deliver]` on the same
    database, with this process's environment less the web's secrets (`WEB_ONLY_ENV`)."""
    options: list[str] = []
    for name, value in ctx.find_root().params.items():
        if value is None or value is False or name == "verbose":
            continue
        flag = f"--{name.replace('_', '-')}"
        options += [flag] if value is True else [flag, str(value)]  # True: a flag (--quiet)
    verbose = ["-" + "v" * ctx.meta["verbose"]] if ctx.meta.get("verbose") else []
    argv = [sys.executable, "-m", "volfefe", *verbose, *options, "jobs", "worker"]
    if not deliver:
        argv.append("--no-deliver")
    click.echo(f"starting a job worker: {' '.join(argv[1:])}", err=True)
    env = {name: value for name, value in os.environ.items() if name not in WEB_ONLY_ENV}
    return subprocess.Popen(argv, env={**env, "DATABASE_URL": url})


def stop_worker(worker: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM (the worker's graceful stop), then SIGKILL after `timeout` seconds."""
    if worker.poll() is None:
        worker.terminate()
    try:
        worker.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=timeout)
