"""volfefe: financial sentiment of market-moving posts with FinBERT, supervised and stored.

>>> from volfefe import Classifier, Settings                           # doctest: +SKIP
>>> Classifier(Settings(model="path/to/model")).classify("Stocks rally").sentiment  # doctest: +SKIP
'positive'

`__all__` is the public API: the classifier and its settings, the result, the errors, and
`watch`/`awatch` (the stored signals as they land). `volfefe.__version__` is the installed
version. Every other module is private: its names
may change in any release.

Imports nothing on import: each public name is loaded on first use (PEP 562), so the child,
which imports `volfefe.protocol` and `volfefe.child` only, never loads the supervisor.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from volfefe.config import Settings
    from volfefe.errors import (
        AccuracyGuardFailed,
        AlreadyClassified,
        Bf16Unavailable,
        CallTimeout,
        ClassificationFailed,
        ClassifierError,
        ConfigError,
        ContentNotFound,
        DatabaseUnavailable,
        DeliveryFailed,
        FieldTooLong,
        ForwardPassFailed,
        InvalidPost,
        InvalidSink,
        JobNotFound,
        ModelUnavailable,
        NoTextError,
        Overloaded,
        PoisonText,
        PoolBroken,
        PoolClosed,
        ProtocolError,
        RequestTimeout,
        SchemaOutdated,
        SinkError,
        SinkNotFound,
        StoreError,
        VolfefeError,
        WorkerBootError,
        WorkerCrashed,
        WorkerError,
    )
    from volfefe.result import Classification
    from volfefe.store.signals import Signal, awatch, watch
    from volfefe.supervisor.classifier import Classifier
    from volfefe.supervisor.pull import pulled_settings

_HOMES = {
    "Classification": "volfefe.result",
    "Classifier": "volfefe.supervisor.classifier",
    "Settings": "volfefe.config",
    "Signal": "volfefe.store.signals",
    "watch": "volfefe.store.signals",
    "awatch": "volfefe.store.signals",
    "pulled_settings": "volfefe.supervisor.pull",
    **dict.fromkeys(
        [
            "AccuracyGuardFailed",
            "AlreadyClassified",
            "Bf16Unavailable",
            "CallTimeout",
            "ClassificationFailed",
            "ClassifierError",
            "ConfigError",
            "ContentNotFound",
            "DatabaseUnavailable",
            "DeliveryFailed",
            "FieldTooLong",
            "InvalidPost",
            "InvalidSink",
            "JobNotFound",
            "ModelUnavailable",
            "ForwardPassFailed",
            "NoTextError",
            "Overloaded",
            "PoisonText",
            "PoolBroken",
            "PoolClosed",
            "ProtocolError",
            "RequestTimeout",
            "SchemaOutdated",
            "SinkError",
            "SinkNotFound",
            "StoreError",
            "VolfefeError",
            "WorkerBootError",
            "WorkerCrashed",
            "WorkerError",
        ],
        "volfefe.errors",
    ),
}

__all__ = [
    "AccuracyGuardFailed",
    "AlreadyClassified",
    "Bf16Unavailable",
    "CallTimeout",
    "Classification",
    "ClassificationFailed",
    "Classifier",
    "ClassifierError",
    "ConfigError",
    "ContentNotFound",
    "DatabaseUnavailable",
    "DeliveryFailed",
    "FieldTooLong",
    "ForwardPassFailed",
    "InvalidPost",
    "InvalidSink",
    "JobNotFound",
    "ModelUnavailable",
    "NoTextError",
    "Overloaded",
    "PoisonText",
    "PoolBroken",
    "PoolClosed",
    "ProtocolError",
    "RequestTimeout",
    "SchemaOutdated",
    "Settings",
    "Signal",
    "SinkError",
    "SinkNotFound",
    "StoreError",
    "VolfefeError",
    "WorkerBootError",
    "WorkerCrashed",
    "WorkerError",
    "awatch",
    "pulled_settings",
    "watch",
]


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use; `__version__` from the installed
    package's metadata, whose one source is pyproject.toml's `version`."""
    if name == "__version__":
        # Loaded here, not at the top: importlib.metadata costs a child ~50 ms of boot.
        return importlib.import_module("importlib.metadata").version("volfefe")
    if name not in _HOMES:
        raise AttributeError(f"module 'volfefe' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
