"""Model provisioning as a step of its own, before any child starts: `volfefe model pull`.

```
hub id + revision ──model_info (hub_timeout)──> commit ──hf_hub_download each file──> HF cache
        │ unreachable: the cached snapshot of that revision, or ModelUnavailable at once
        v
settings.replace(revision=<commit>, worker_env += HF_HUB_OFFLINE=1)
```
The children then load the files from the cache, never from the network, so `boot_timeout`
measures loading only and a slow first download cannot make a boot time out. The download has
its own deadline (`download_timeout`, in all) and shows progress on stderr (a line per file,
and huggingface_hub's bar on a terminal). A local folder is used as it is. With
`HF_HUB_OFFLINE=1` nothing is asked of the hub: the cached snapshot is used.
"""

from __future__ import annotations

import fnmatch
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from volfefe.child.hub import unavailable_message, unreachable
from volfefe.config import Settings
from volfefe.errors import ConfigError, ModelUnavailable

# What a BERT-style classifier needs; weights in safetensors when the repository has them.
WANTED = ("*.json", "*.txt", "*.model", "*.safetensors", "*.bin")
COMMIT = 40  # hex digits of a commit id


@dataclass(frozen=True)
class Pulled:
    """Where a model's files are: the cache folder of one commit (or the local folder)."""

    folder: Path
    commit: str | None  # None for a local folder
    downloaded: list[str]


def is_local(settings: Settings) -> bool:
    """Whether `settings.model` names a folder on this machine (nothing to pull): one that
    exists, or a path no hub id looks like (absolute, `./`, `~`, more than one `/`), which
    the children then report as missing.

    >>> is_local(Settings(model="/no/such/folder")), is_local(Settings(model="org/name"))
    (True, False)
    """
    model = settings.model
    if Path(model).expanduser().is_dir():
        return True
    return model.startswith(("/", ".", "~")) or model.count("/") > 1


def pull(settings: Settings, *, progress: bool = True) -> Pulled:
    """Resolve the revision to a commit and download what is missing into the HF cache.

    Raises `ModelUnavailable` when the hub cannot be reached and nothing is cached, or when
    the download takes longer than `download_timeout`; `ConfigError` for an unknown
    repository or revision.
    """
    if is_local(settings):
        folder = Path(settings.model).expanduser()
        if not folder.is_dir():
            raise ConfigError(
                f"VOLFEFE_MODEL: the folder {settings.model!r} does not exist", setting="model"
            )
        return Pulled(folder, None, [])
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return _cached(settings, "HF_HUB_OFFLINE is set")
    info = _resolve(settings)
    if info is None:
        return _cached(settings, f"the hub at {constants.ENDPOINT} cannot be reached")
    commit, files = info
    return _download(settings, commit, _wanted(files), progress)


def pulled_settings(settings: Settings, *, progress: bool = True) -> Settings:
    """`settings` for children that load a pulled model from the cache only."""
    if is_local(settings):
        return settings
    done = pull(settings, progress=progress)
    return settings.replace(
        revision=done.commit, worker_env={**settings.worker_env, "HF_HUB_OFFLINE": "1"}
    )


def _resolve(settings: Settings) -> tuple[str, list[str]] | None:
    """(commit, file names) of the revision, or None when the hub does not answer."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        info = HfApi().model_info(
            settings.model, revision=settings.revision or "main", timeout=settings.hub_timeout
        )
    except RevisionNotFoundError:
        raise ConfigError(
            f"VOLFEFE_REVISION: {settings.model!r} has no revision {settings.revision!r}",
            setting="revision",
        ) from None
    except (RepositoryNotFoundError, GatedRepoError) as exc:
        raise ConfigError(
            f"VOLFEFE_MODEL: no model {settings.model!r} on the hub, or it needs a token "
            f"(HF_TOKEN) ({type(exc).__name__}); a local folder works too",
            setting="model",
        ) from None
    except Exception as exc:
        if unreachable(exc) or isinstance(exc, HfHubHTTPError):
            return None
        raise
    if not info.sha:
        return None
    return info.sha, [s.rfilename for s in info.siblings or []]


def _wanted(files: list[str]) -> list[str]:
    picked = [f for f in files if "/" not in f and any(fnmatch.fnmatch(f, p) for p in WANTED)]
    if any(f.endswith(".safetensors") for f in picked):
        picked = [f for f in picked if not f.endswith(".bin")]  # one copy of the weights
    return picked


def _download(settings: Settings, commit: str, files: list[str], progress: bool) -> Pulled:
    """Download `files` of `commit` in a daemon thread, waited for up to `download_timeout`."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import (  # type: ignore[attr-defined]
        disable_progress_bars,
        enable_progress_bars,
    )

    (enable_progress_bars if progress else disable_progress_bars)()
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            paths = []
            for i, name in enumerate(files, start=1):
                if progress:  # a line per file, and huggingface_hub's bar on a terminal
                    where = f"{settings.model}@{commit[:12]}"
                    print(
                        f"pulling {where}: {name} ({i}/{len(files)})", file=sys.stderr, flush=True
                    )
                paths.append(
                    hf_hub_download(
                        settings.model, name, revision=commit, etag_timeout=settings.hub_timeout
                    )
                )
            result["folder"] = Path(paths[0]).parent if paths else None
        except BaseException as exc:  # handed to the waiting thread, which raises it
            result["error"] = exc

    worker = threading.Thread(target=work, name="volfefe-pull", daemon=True)
    worker.start()
    worker.join(settings.download_timeout)
    if worker.is_alive():  # the thread dies with the process; a later pull resumes the files
        raise ModelUnavailable(
            f"downloading {settings.model!r} took longer than {settings.download_timeout:g} s "
            "(VOLFEFE_DOWNLOAD_TIMEOUT); a later run resumes where it stopped"
        )
    if "error" in result:
        error = result["error"]
        raise ModelUnavailable(
            f"downloading {settings.model!r}@{commit[:12]} failed: {type(error).__name__}: {error}"
        ) from error
    folder = result.get("folder")
    if folder is None:
        raise ModelUnavailable(f"{settings.model!r}@{commit[:12]} has no model files")
    return Pulled(folder, commit, files)


def _cached(settings: Settings, why: str) -> Pulled:
    """The cached snapshot of the revision, or ModelUnavailable naming what to do."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(
            snapshot_download(settings.model, revision=settings.revision, local_files_only=True)
        )
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        raise ModelUnavailable(unavailable_message(settings.model, why)) from None
    commit = folder.name if len(folder.name) == COMMIT else None
    return Pulled(folder, commit, [])
