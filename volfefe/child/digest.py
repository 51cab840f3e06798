"""Content digests of whole model files, cached by (size, mtime) so start-up stays fast.

A weights file is hashed in full the first time (about a second for FinBERT's 440 MB); the
digest is then kept in a small JSON record under a cache folder, keyed by the file's real
path, and reused while the file's size, modification time and inode are unchanged. Records
are written to a private temporary file and renamed into place, never through a symlink.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> (d / "w.bin").write_bytes(b"weights")
7
>>> file_digest(d / "w.bin", d / "cache")[:12]
'9a129038d9a0'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path

CHUNK = 1 << 20


class UnsafeFolder(Exception):
    """A cache folder that other users could write to (or that is not a folder)."""


def checked_folder(folder: Path) -> Path:
    """Create `folder` (private, 0700) if missing and check that other users cannot plant
    files in it: it must be a directory we own, not writable by others unless sticky."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.stat(folder)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeFolder(f"{folder} is not a folder")
    if st.st_uid != os.getuid():
        raise UnsafeFolder(f"{folder} belongs to another user (uid {st.st_uid})")
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        raise UnsafeFolder(f"{folder} is writable by every user: chmod o-w it")
    return folder


def sha256_of(path: Path) -> str:
    """The SHA-256 of the whole file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_digest(path: Path, cache: Path | None) -> str:
    """SHA-256 of the whole of `path`, reusing a cached value while size/mtime/inode match.

    Without a cache folder (or when it cannot be used) the file is simply hashed.
    """
    st = os.stat(path)
    key = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}
    real = str(path.resolve())
    record = None
    if cache is not None:
        record = cache / (hashlib.sha256(real.encode()).hexdigest()[:24] + ".json")
        try:
            saved = json.loads(_read_nofollow(record))
            if saved.get("path") == real and saved.get("key") == key:
                return str(saved["sha256"])
        except (OSError, ValueError, KeyError):
            pass
    value = sha256_of(path)
    if record is not None:
        # a cache we cannot write only costs the next start-up a full hash
        with contextlib.suppress(OSError, UnsafeFolder):
            _write_atomic(checked_folder(record.parent), record, real, key, value)
    return value


def _read_nofollow(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        return fh.read(1 << 16)


def _write_atomic(folder: Path, record: Path, real: str, key: dict[str, int], value: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".digest.", dir=folder)  # O_EXCL, 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"path": real, "key": key, "sha256": value}, fh)
        os.replace(tmp, record)  # rename replaces a symlink itself, never its target
    except BaseException:
        os.unlink(tmp)
        raise
