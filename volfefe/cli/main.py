"""The command line: `python -m volfefe COMMAND`. Builds one Settings and passes it down.

Every error is printed one way, `TypeName: message` on stderr, and ends the process with a
documented status:

```
0    success
1    some posts or texts failed, a rejected import row, an unknown id   (VolfefeError)
2    usage error (click's, printed as `UsageError: ...`) or ConfigError
3    the worker pool broke (PoolBroken)
4    database unavailable or schema behind (DatabaseUnavailable, SchemaOutdated)
130  interrupted (Ctrl-C)
```
A command ends with a status through `ctx.exit(N)` or `sys.exit(N)`; both are kept.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click
import psycopg

from volfefe.cli.chaos import chaos_command
from volfefe.cli.classify import classify_command
from volfefe.cli.db import db_group
from volfefe.cli.deliver import deliver_command
from volfefe.cli.export import results_export_command
from volfefe.cli.jobs import jobs_group
from volfefe.cli.model import eval_command, model_group
from volfefe.cli.posts import import_command, show_command, stats_command
from volfefe.cli.predict import predict_command
from volfefe.cli.reclassify import reclassify_command
from volfefe.cli.serve import serve_command
from volfefe.cli.sinks import sinks_group
from volfefe.cli.terminal import for_terminal
from volfefe.cli.watch import watch_command
from volfefe.config import Settings, declared
from volfefe.errors import ConfigError, VolfefeError, raised_by_ctrl_c

EXIT_INTERRUPTED = 130
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
F = TypeVar("F", bound=Callable[..., Any])


def settings_options(command: F) -> F:
    """The global options: one per setting declared with `option=True` (volfefe/config.py),
    `--name-with-dashes`, with the setting's description and variable as its help."""
    for name, kind, spec in reversed(list(declared())):
        if not spec.option:
            continue
        choices = getattr(spec.check, "choices", None)
        command = click.option(
            "--" + name.replace("_", "-"),
            type=click.Choice(choices) if choices else kind,
            help=f"{spec.doc} [env {spec.env}].",
        )(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="volfefe", prog_name="volfefe")
@settings_options
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="No progress display; warnings and errors only.")
@click.pass_context
def cli(ctx: click.Context, /, verbose: int, quiet: bool, **options: Any) -> None:
    """volfefe: financial sentiment of market-moving posts."""
    if verbose and quiet:
        raise click.UsageError("-v and -q cannot be used together")
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format=LOG_FORMAT)
    try:
        ctx.obj = Settings.from_env(os.environ, **options)
    except ConfigError as exc:
        if exc.setting is not None and options.get(exc.setting) is not None:
            option = "--" + exc.setting.replace("_", "-")
            raise ConfigError(f"{option}: {exc}", setting=exc.setting) from None
        raise
    ctx.meta["verbose"] = verbose
    ctx.meta["quiet"] = quiet


for command in (
    predict_command,
    db_group,
    import_command,
    classify_command,
    reclassify_command,
    stats_command,
    show_command,
    results_export_command,
    jobs_group,
    eval_command,
    model_group,
    watch_command,
    serve_command,
    sinks_group,
    deliver_command,
    chaos_command,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the CLI and exit with its status; errors become `TypeName: message` on stderr."""
    try:
        status = cli.main(args=argv, prog_name="volfefe", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("Interrupted", "aborted", EXIT_INTERRUPTED)
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # click >= 8.2: a group alone shows help
            click.echo(exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        if exc.ctx is not None:
            click.echo(exc.ctx.get_usage(), err=True)
            hint = f"{exc.ctx.command_path} {exc.ctx.help_option_names[0]}"
            click.echo(f"Try '{hint}' for help.", err=True)
        _fail("UsageError", exc.format_message(), exc.exit_code)
    except click.ClickException as exc:
        _fail(type(exc).__name__, exc.format_message(), exc.exit_code)
    except VolfefeError as exc:
        _fail(type(exc).__name__, for_terminal(str(exc)), exc.exit_code)
    except KeyboardInterrupt:
        _fail("Interrupted", "stopped by Ctrl-C", EXIT_INTERRUPTED)
    except psycopg.Error as exc:
        if not raised_by_ctrl_c(exc):
            raise
        # Ctrl-C landed inside a database call and psycopg's clean-up raised in its place.
        _fail("Interrupted", "stopped by Ctrl-C", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`volfefe export | head`); say nothing more on a dead pipe.
        sys.stderr.close()
        os._exit(1)
    # With standalone_mode=False click returns what `ctx.exit(N)` asked for instead of
    # exiting: keep it, or a command's failure would end in status 0.
    sys.exit(status if isinstance(status, int) else 0)


def _fail(type_name: str, message: str, code: int) -> NoReturn:
    click.echo(f"{type_name}: {message}", err=True)
    sys.exit(code)
