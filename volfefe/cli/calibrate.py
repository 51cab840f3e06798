"""The texts a guarded export (int8-static, int8-static-bf16; bf16 for its held-out check only)
calibrates on: a file, or a sample of the stored posts."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from volfefe.child.calibration import MIN_TEXTS, distinct_count, read_texts, stratified_indices
from volfefe.config import Settings


@contextlib.contextmanager
def calibration_file(
    settings: Settings, from_db: int | None, given: Path | None, seed: int
) -> Iterator[tuple[Path | None, str | None]]:
    """(file, label) to calibrate on: `given`, or (with `from_db`) a private temporary JSONL
    file of that many stored posts plus the guard's held-out ones, length-stratified and
    seeded; (None, None) when neither is asked for (the exporter uses the shipped sample).
    Fewer than MIN_TEXTS distinct texts is a usage error here, before any export starts."""
    if from_db is None:
        if given is not None:
            try:
                count = distinct_count(read_texts(given))
            except (OSError, ValueError) as exc:
                raise click.UsageError(f"cannot read the calibration texts: {exc}") from exc
            if count < MIN_TEXTS:
                raise click.UsageError(
                    f"{given} holds {count} distinct texts: too few to calibrate on; a guarded "
                    f"export needs at least {MIN_TEXTS} (a third held out for the accuracy guard)"
                )
        yield given, None
        return
    from volfefe.store.connect import connect
    from volfefe.store.samples import ids_by_length, texts_by_ids

    with connect(settings) as conn:
        ids = ids_by_length(conn)
        picked = stratified_indices(len(ids), from_db + settings.guard_size, seed)
        texts = texts_by_ids(conn, [ids[i] for i in picked])
    if len(texts) < MIN_TEXTS:
        raise click.UsageError(
            f"the database holds {len(texts)} posts with text: too few to calibrate on (a "
            f"guarded export needs at least {MIN_TEXTS}); import posts first, or leave "
            "--calibrate-from-db out to use the shipped sample"
        )
    fd, name = tempfile.mkstemp(prefix="volfefe-calibration.", suffix=".jsonl")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for text in texts:
                fh.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
        yield Path(name), f"database ({len(texts)} posts)"
    finally:
        os.unlink(name)
