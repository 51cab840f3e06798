"""The command line: `python -m volfefe COMMAND`. Builds one Settings and passes it down.

Errors that reach the top print `TypeName: message` on stderr and exit with the error's
`exit_code` (1 failure, 2 usage or configuration, 3 pool broken, 4 database); click's usage
errors exit 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from volfefe.cli.chaos import chaos_command
from volfefe.cli.classify import classify_command
from volfefe.cli.db import db_group
from volfefe.cli.jobs import jobs_group
from volfefe.cli.model import eval_command, model_group
from volfefe.cli.posts import import_command, show_command, stats_command
from volfefe.cli.predict import predict_command
from volfefe.config import Settings
from volfefe.errors import VolfefeError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", help="Hub id or local folder [env VOLFEFE_MODEL].")
@click.option("--revision", help="Model revision on the hub [env VOLFEFE_REVISION].")
@click.option(
    "--workers", type=click.IntRange(min=1), help="Child processes [env VOLFEFE_WORKERS]."
)
@click.option(
    "--threads", type=click.IntRange(min=1), help="Torch threads per child [env VOLFEFE_THREADS]."
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda", "mps"]),
    help="Inference device [env VOLFEFE_DEVICE].",
)
@click.option(
    "--quantize",
    type=click.Choice(["none", "int8"]),
    help="int8: dynamic int8 Linear layers, faster on CPU [env VOLFEFE_QUANTIZE].",
)
@click.option(
    "--backend",
    type=click.Choice(["auto", "torch", "onnx"]),
    help="Inference backend; auto = onnx when installed [env VOLFEFE_BACKEND].",
)
@click.option("--call-timeout", type=float, help="Seconds per call [env VOLFEFE_CALL_TIMEOUT].")
@click.option(
    "--boot-timeout",
    type=float,
    help="Seconds for a child to get ready [env VOLFEFE_BOOT_TIMEOUT].",
)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, /, verbose: int, **options: Any) -> None:
    """volfefe: financial sentiment of market-moving posts."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = Settings.from_env(os.environ, **options)
    ctx.meta["verbose"] = verbose


for command in (
    predict_command,
    db_group,
    import_command,
    classify_command,
    stats_command,
    show_command,
    jobs_group,
    eval_command,
    model_group,
    chaos_command,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; VolfefeError becomes `TypeName: message` and its exit code."""
    try:
        cli.main(args=argv, prog_name="volfefe", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except VolfefeError as exc:
        click.echo(f"{type(exc).__name__}: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
