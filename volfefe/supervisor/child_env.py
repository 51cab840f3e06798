"""The environment a child gets: only what loading and running a model needs.

A child runs third-party code (tokenizers, torch, model files), so it never sees the
orchestrator's secrets: no `DATABASE_URL`, no cloud or API credentials, no `VOLFEFE_*`
settings (the child gets those as arguments). What passes, by name or prefix:

- the basics: `PATH`, `HOME`, `LANG`, `LC_*`, `TZ`, `TMPDIR`, `PYTHONPATH`, `LD_LIBRARY_PATH`,
  `XDG_CACHE_HOME`;
- the model caches and offline switches: `HF_*`, `HUGGINGFACE_*`, `TRANSFORMERS_*`, `TORCH_HOME`;
- threads and devices: `OMP_*`, `MKL_*`, `OPENBLAS_*`, `TOKENIZERS_PARALLELISM`, `CUDA_*`;
- the test-only fault switch `VOLFEFE_WORKER_FAULT*`;

then `settings.worker_env`, which is passed whole (it is the explicit way to give a child more).
"""

from __future__ import annotations

from collections.abc import Mapping

KEPT_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "TZ",
        "TMPDIR",
        "PYTHONPATH",
        "LD_LIBRARY_PATH",
        "XDG_CACHE_HOME",
        "TORCH_HOME",
        "TOKENIZERS_PARALLELISM",
    }
)
KEPT_PREFIXES = (
    "LC_",
    "HF_",
    "HUGGINGFACE_",
    "TRANSFORMERS_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "CUDA_",
    "VOLFEFE_WORKER_FAULT",
)


def child_environment(parent: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The variables of `parent` a child may see, then every one of `extra`.

    >>> child_environment({"PATH": "/bin", "DATABASE_URL": "postgres://u:pw@h/db"}, {"X": "1"})
    {'PATH': '/bin', 'X': '1'}
    """
    kept = {
        name: value
        for name, value in parent.items()
        if name in KEPT_NAMES or name.startswith(KEPT_PREFIXES)
    }
    return {**kept, **extra}
