"""The command line: `python -m volfefe COMMAND`. Builds one Settings and passes it down.

Errors that reach the top print `TypeName: message` on stderr and exit with the error's
`exit_code` (1 failure, 2 usage or configuration, 3 pool broken, 4 database); click's usage
errors exit 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
import orjson

from volfefe.classifier import Classifier
from volfefe.cli_classify import classify_command
from volfefe.cli_db import register as register_db_commands
from volfefe.cli_jobs import jobs_group
from volfefe.config import Settings
from volfefe.errors import ClassifierError, VolfefeError

PREDICT_CHUNK = 256


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


@cli.command()
@click.argument("texts", nargs=-1, required=True)
@click.pass_obj
def predict(settings: Settings, texts: tuple[str, ...]) -> None:
    """Classify TEXTS (or one text per stdin line with `-`) and print JSON lines.

    No database is needed. Exit status 1 when any text failed (its line holds the error).
    """
    source = _stdin_texts(sys.stdin.buffer) if texts == ("-",) else iter([list(texts)])
    failed = False
    with Classifier(settings) as clf:
        for chunk in source:
            for result in clf.classify_many(chunk, return_exceptions=True):
                if isinstance(result, ClassifierError):
                    failed = True
                    _echo_json({"error": {"type": type(result).__name__, "message": str(result)}})
                else:
                    _echo_json(result.to_dict())
    if failed:
        sys.exit(1)


@cli.command("eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--compare",
    type=click.Choice(["int8"]),
    help="Also run the int8 model and report how often it agrees.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def eval_command(settings: Settings, file: Path, compare: str | None, as_json: bool) -> None:
    """Score the configured model on FILE, a CSV with columns text,label.

    Prints accuracy, per-class precision/recall/F1 and the confusion matrix; with
    `--compare int8` (or `torch`/`onnx`), the label agreement and largest probability
    difference between the configured model and its int8 quantisation (or the other
    backend: the parity check). Empty texts are skipped.
    """
    from volfefe.evaluate import agreement, read_labelled_csv, score

    texts, gold = read_labelled_csv(file)
    kept = [(t, g) for t, g in zip(texts, gold, strict=True) if t.strip()]
    with Classifier(settings) as clf:
        results = clf.classify_many([t for t, _ in kept])
        report = score([g for _, g in kept], [r.sentiment for r in results])
        report["model_version"] = clf.model_version
    if compare:
        change = {"quantize": "int8"} if compare == "int8" else {"backend": compare}
        with Classifier(settings.replace(**change)) as other:
            report["compare"] = {
                "model_version": other.model_version,
                **agreement(results, other.classify_many([t for t, _ in kept])),
            }
    if as_json:
        _echo_json(report)
        return
    click.echo(f"{report['model_version']}: accuracy {report['accuracy']:.3f} on {report['n']}")
    click.echo(f"{'':10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
    for label, m in report["per_class"].items():
        click.echo(
            f"{label:10} {m['precision']:9.3f} {m['recall']:7.3f} {m['f1']:6.3f} {m['support']:8d}"
        )
    click.echo("confusion (rows: label, columns: predicted)")
    click.echo(f"{'':10} " + " ".join(f"{p:>8}" for p in report["confusion"]))
    for label, row in report["confusion"].items():
        click.echo(f"{label:10} " + " ".join(f"{n:8d}" for n in row.values()))
    if compare:
        c = report["compare"]
        click.echo(
            f"{c['model_version']}: label agreement {c['label_agreement']:.3f}, "
            f"max |dp| {c['max_abs_dp']:.4f}"
        )


@cli.group("model")
def model_group() -> None:
    """The model files the children load."""


@model_group.command("export")
@click.pass_obj
def export_command(settings: Settings) -> None:
    """Export the configured model to ONNX (cached; a second run reuses it) and print where.

    The orchestrator does the same on first use of the onnx backend.
    """
    import asyncio

    from volfefe.model_files import backend_args

    args = asyncio.run(backend_args(settings.replace(backend="onnx")))
    click.echo(args[args.index("--onnx-dir") + 1])


register_db_commands(cli)
cli.add_command(classify_command)
cli.add_command(jobs_group)


def _stdin_texts(stream: IO[bytes]) -> Iterator[list[str]]:
    """Chunks of stdin lines; invalid UTF-8 becomes U+FFFD."""
    chunk: list[str] = []
    for raw in stream:
        chunk.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
        if len(chunk) >= PREDICT_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _echo_json(obj: dict[str, Any]) -> None:
    click.echo(orjson.dumps(obj).decode())


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
