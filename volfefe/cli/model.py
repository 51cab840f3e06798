"""`volfefe eval` and `volfefe model export`: how good the model is, and its files."""

from __future__ import annotations

from pathlib import Path

import click

from volfefe.cli.common import echo_json, with_model
from volfefe.config import Settings
from volfefe.protocol import GUARDED_SCHEMES, QUANTIZE_SCHEMES
from volfefe.supervisor.classifier import Classifier


@click.command("eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--compare",
    type=click.Choice([*(s for s in QUANTIZE_SCHEMES if s != "none"), "torch", "onnx", "openvino"]),
    help="Also run the model with these numerics (int8, int8-static, bf16, ...) or on another "
    "backend, and report how they agree.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def eval_command(settings: Settings, file: Path, compare: str | None, as_json: bool) -> None:
    """Score the configured model on FILE, a CSV with columns text,label.

    Prints accuracy, per-class precision/recall/F1 and the confusion matrix; with
    `--compare int8` (int8-static, bf16, int8-static-bf16, or `torch`/`onnx`), the label
    agreement and largest probability difference between the configured model and its
    quantisation (or the other backend: the parity check). Empty texts are skipped.
    """
    from volfefe.cli.metrics import agreement, read_labelled_csv, score

    if compare and compare == (
        settings.quantize if compare in QUANTIZE_SCHEMES else settings.resolved_backend
    ):
        raise click.UsageError(
            f"--compare {compare} compares the configured model with itself; pick the "
            "other backend (e.g. --backend torch eval FILE --compare onnx)"
        )
    texts, gold = read_labelled_csv(file)
    settings = with_model(settings)
    kept = [(t, g) for t, g in zip(texts, gold, strict=True) if t.strip()]
    with Classifier(settings) as clf:
        results = clf.classify_many([t for t, _ in kept])
        report = score([g for _, g in kept], [r.sentiment for r in results])
        report["model_version"] = clf.model_version
    if compare:
        change = {"quantize": compare} if compare in QUANTIZE_SCHEMES else {"backend": compare}
        with Classifier(settings.replace(**change)) as other:
            report["compare"] = {
                "model_version": other.model_version,
                **agreement(results, other.classify_many([t for t, _ in kept])),
            }
    if as_json:
        echo_json(report)
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


@click.group("model")
def model_group() -> None:
    """The model files the children load."""


@model_group.command("export")
@click.option(
    "--quantize",
    type=click.Choice(QUANTIZE_SCHEMES),
    help="Numerics to export; int8-static (calibrated), bf16 and int8-static-bf16 are "
    "checked by the accuracy guard (OpenVINO).",
)
@click.option(
    "--calibrate-from-db",
    "from_db",
    type=click.IntRange(min=1),
    metavar="N",
    help="Guarded schemes: calibrate and check on N of your stored posts (length-stratified, "
    "seeded).",
)
@click.option(
    "--calibrate",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Guarded schemes: calibrate and check on the texts of FILE (JSON lines with a text "
    "key, or lines).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the samples.")
@click.pass_obj
def model_export_command(
    settings: Settings,
    quantize: str | None,
    from_db: int | None,
    calibrate: Path | None,
    seed: int,
) -> None:
    """Export the configured model (cached; a second run reuses it) and print where.

    The orchestrator does the same on first use of the onnx or openvino backend. With
    `--quantize int8-static` the export is calibrated (on your posts, FILE, or the shipped
    sample posts) and installed only if the accuracy guard passes on held-out posts;
    otherwise AccuracyGuardFailed (exit 5). bf16 and int8-static-bf16 are checked the same
    way (bf16 needs no calibration: its texts serve the held-out check only). An explicit
    calibration always exports again.
    """
    import asyncio

    from volfefe.cli.calibrate import calibration_file
    from volfefe.supervisor.provision import ExportRequest, backend_args

    settings = with_model(settings)
    if quantize:
        settings = settings.replace(quantize=quantize)
    if from_db and calibrate:
        raise click.UsageError("give --calibrate-from-db or --calibrate, not both")
    if (from_db or calibrate) and settings.quantize not in GUARDED_SCHEMES:
        raise click.UsageError(f"calibration is for --quantize {', '.join(GUARDED_SCHEMES)} only")
    if settings.resolved_backend == "torch":  # nothing to export for torch: the ONNX default
        settings = settings.replace(backend="onnx")
    elif settings.backend == "auto":  # no silent fallback: say what failed
        settings = settings.replace(backend=settings.resolved_backend)
    with calibration_file(settings, from_db, calibrate, seed) as (path, label):
        request = ExportRequest(calibrate=path, label=label, seed=seed, force=path is not None)
        args = asyncio.run(backend_args(settings, request))
    click.echo(args[args.index("--export-dir") + 1])


@model_group.command("pull")
@click.pass_obj
def pull_command(settings: Settings) -> None:
    """Download the configured hub model (the revision resolved to a commit) into the cache,
    with a progress bar, and print its folder. Every command that needs the model does this
    first; a local folder is used as it is.

    Fails at once, with ModelUnavailable (exit 3), when the hub cannot be reached and the
    revision is not cached; VOLFEFE_HUB_TIMEOUT bounds each answer of the hub and
    VOLFEFE_DOWNLOAD_TIMEOUT the whole download.
    """
    from volfefe.supervisor.pull import pull

    quiet = bool(click.get_current_context().meta.get("quiet", False))
    done = pull(settings, progress=not quiet)
    if done.commit is not None:
        got = f"{len(done.downloaded)} files" if done.downloaded else "from the cache"
        click.echo(f"{settings.model}@{done.commit} ({got})", err=True)
    click.echo(str(done.folder))
