"""`volfefe predict`: classify texts given on the command line or stdin; no database."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import IO

import click

from volfefe.cli.common import echo_json
from volfefe.config import Settings
from volfefe.errors import ClassifierError
from volfefe.supervisor.classifier import Classifier

PREDICT_CHUNK = 256


@click.command("predict")
@click.argument("texts", nargs=-1, required=True)
@click.pass_obj
def predict_command(settings: Settings, texts: tuple[str, ...]) -> None:
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
                    echo_json({"error": {"type": type(result).__name__, "message": str(result)}})
                else:
                    echo_json(result.to_dict())
    if failed:
        sys.exit(1)


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
