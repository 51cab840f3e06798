"""Whether a hub model can be had, asked fast: the child's side of `volfefe model pull`.

```
hub id ──HF_HUB_OFFLINE set──> the cached snapshot, or ModelUnavailable
   │
   └──one question to the hub (timeout, no retries)──answers──> transformers loads as usual
                        │ no answer
                        └──> the cached snapshot (local files only), or ModelUnavailable
```

The orchestrator pulls a hub model before any child starts (volfefe/supervisor/pull.py, which
takes `unreachable` and `unavailable_message` from here) and its children run with
HF_HUB_OFFLINE=1. A child started by hand (`python worker/classify.py`) asks the same way, so
an unreachable hub costs one refused connection, not transformers' minute of retries.
"""

from __future__ import annotations

from volfefe.child.engine import ModelLoadError
from volfefe.protocol import DEFAULT_HUB_TIMEOUT

HUB_TIMEOUT = DEFAULT_HUB_TIMEOUT  # seconds for the hub to answer


class ModelUnavailable(ModelLoadError):
    """The files of a hub model cannot be had: the hub does not answer (or HF_HUB_OFFLINE is
    set) and they are not in the cache. The CLI's ModelUnavailable, with the same message."""


def unavailable_message(model: str, why: str) -> str:
    """What to do when hub model `model` cannot be had, and why (the CLI and the child).

    >>> unavailable_message("org/name", "HF_HUB_OFFLINE is set")[:55]
    "cannot load model 'org/name': HF_HUB_OFFLINE is set and"
    """
    return (
        f"cannot load model {model!r}: {why} and it is not in the cache; connect to the "
        "network once (`volfefe model pull`), or set VOLFEFE_MODEL (--model) to a local folder"
    )


def unreachable(exc: BaseException) -> bool:
    """A connection or timeout error of the hub client's HTTP library (requests, httpx or
    httpx2, depending on the huggingface_hub version), told apart by class name.

    >>> unreachable(ConnectionRefusedError()), unreachable(ValueError())
    (True, False)
    """
    names = {"TransportError", "RequestError", "ConnectionError", "Timeout", "TimeoutException"}
    return isinstance(exc, OSError) or any(c.__name__ in names for c in type(exc).__mro__)


def local_only(model: str, revision: str | None, timeout: float = HUB_TIMEOUT) -> bool:
    """Whether to load hub model `model` from the cache only: False when the hub answers
    within `timeout` (transformers then downloads what is missing, and reports what the hub
    said), True when it does not or HF_HUB_OFFLINE is set and the snapshot is cached;
    ModelUnavailable when it is not."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if constants.HF_HUB_OFFLINE:
        why = "HF_HUB_OFFLINE is set"
    else:
        try:
            HfApi().model_info(model, revision=revision or "main", timeout=timeout)
        except (RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError):
            return False  # an answer: transformers reports it in its words
        except Exception as exc:
            if not (unreachable(exc) or isinstance(exc, HfHubHTTPError)):  # as `model pull`
                return False
            why = f"the hub at {constants.ENDPOINT} cannot be reached"
        else:
            return False
    if not _cached(model, revision):
        raise ModelUnavailable(unavailable_message(model, why))
    return True


def _cached(model: str, revision: str | None) -> bool:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot_download(model, revision=revision, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        return False
    return True
