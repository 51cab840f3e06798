"""`--set VOLFEFE_NAME=VALUE`: a volfefe setting given to every volfefe process (and every
`Settings` built in the bench's own process) of one run; the result JSON records each."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence

ENV_PREFIX = "VOLFEFE_"


def parse_setting(text: str) -> tuple[str, str]:
    """One `--set` item as (name, value); argparse reports a bad one as a usage error.

    >>> parse_setting("VOLFEFE_WORKERS=2")
    ('VOLFEFE_WORKERS', '2')
    """
    name, equals, value = text.partition("=")
    if not (name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX) and equals):
        raise argparse.ArgumentTypeError(f"--set takes VOLFEFE_NAME=VALUE, got {text!r}")
    return name, value


def settings_of(items: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The `--set` items as a mapping (a later one wins), sorted by name.

    >>> settings_of([("VOLFEFE_B", "1"), ("VOLFEFE_A", "2"), ("VOLFEFE_B", "3")])
    {'VOLFEFE_A': '2', 'VOLFEFE_B': '3'}
    """
    return dict(sorted(dict(items).items()))


def inherited(env: Mapping[str, str]) -> dict[str, str]:
    """The VOLFEFE_* variables of an environment, sorted (what a run was started with)."""
    return {k: v for k, v in sorted(env.items()) if k.startswith(ENV_PREFIX)}


def clear_volfefe_env() -> None:
    """Remove every VOLFEFE_* variable of this process's environment (default settings)."""
    for name in [name for name in os.environ if name.startswith(ENV_PREFIX)]:
        del os.environ[name]


def offline_env() -> None:
    """No download, no progress bar, no tokenizer threads fighting the model's."""
    os.environ.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
