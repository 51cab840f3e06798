"""volfefe: financial sentiment of market-moving posts with FinBERT, supervised and stored.

>>> from volfefe import Classifier, Settings                           # doctest: +SKIP
>>> Classifier(Settings(model="path/to/model")).classify("Stocks rally").sentiment  # doctest: +SKIP
'positive'

Imports nothing heavy: the child imports `volfefe.protocol` before torch.
"""

from volfefe.config import Settings
from volfefe.errors import (
    AlreadyClassified,
    CallTimeout,
    ClassificationFailed,
    ClassifierError,
    ConfigError,
    ContentNotFound,
    DatabaseUnavailable,
    NoTextError,
    PoolBroken,
    PoolClosed,
    ProtocolError,
    SchemaOutdated,
    StoreError,
    VolfefeError,
    WorkerBootError,
    WorkerCrashed,
    WorkerError,
)
from volfefe.result import Classification
from volfefe.supervisor.classifier import Classifier

__all__ = [
    "AlreadyClassified",
    "CallTimeout",
    "Classification",
    "ClassificationFailed",
    "Classifier",
    "ClassifierError",
    "ConfigError",
    "ContentNotFound",
    "DatabaseUnavailable",
    "NoTextError",
    "PoolBroken",
    "PoolClosed",
    "ProtocolError",
    "SchemaOutdated",
    "Settings",
    "StoreError",
    "VolfefeError",
    "WorkerBootError",
    "WorkerCrashed",
    "WorkerError",
]
