"""Settings: the one place that reads the environment.

Everything below the CLI receives a `Settings` object explicitly. Deadlines are seconds.

>>> s = Settings.from_env({"VOLFEFE_WORKERS": "2", "VOLFEFE_CALL_TIMEOUT": "5"})
>>> (s.workers, s.call_timeout)
(2, 5.0)
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from volfefe.errors import ConfigError
from volfefe.protocol import DEFAULT_MODEL, default_onnx_cache

CHILD_MODULE = "volfefe.child"
DEVICES = ("auto", "cpu", "cuda", "mps")
BACKENDS = ("auto", "torch", "onnx")
QUANTIZE = ("none", "int8")


def default_worker_cmd() -> tuple[str, ...]:
    """The child command: this interpreter running the installed child module (no shell), so
    a wheel, an sdist, an editable install and a checkout all start the same code."""
    return (sys.executable, "-m", CHILD_MODULE)


def default_layout(cores: int | None = None) -> tuple[int, int]:
    """Children and torch threads per child for this machine, so children x threads <= cores.

    One child per two cores: a BERT forward pass uses two threads well, and each child costs
    the model's memory again.

    >>> default_layout(2), default_layout(8), default_layout(1)
    ((1, 2), (4, 2), (1, 1))
    """
    cores = cores or os.cpu_count() or 1
    workers = max(1, cores // 2)
    return workers, max(1, cores // workers)


def default_data_dir(env: Mapping[str, str]) -> Path:
    """Where the embedded database lives: `$XDG_DATA_HOME/volfefe` or `~/.local/share/volfefe`."""
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "volfefe"


@dataclass(frozen=True)
class Settings:
    """Every tunable of volfefe, validated on construction.

    >>> Settings(workers=0)
    Traceback (most recent call last):
    ...
    volfefe.errors.ConfigError: workers must be >= 1, got 0
    """

    model: str = DEFAULT_MODEL
    revision: str | None = None
    workers: int = field(default_factory=lambda: default_layout()[0])
    threads: int = 0  # 0 = cores // workers, so children x threads never oversubscribe
    device: str = "auto"
    quantize: str = "none"  # "int8": dynamic int8 Linear layers (faster on CPU, less exact)
    backend: str = "auto"  # auto: onnx when onnxruntime and the exporter are installed
    onnx_cache: Path = field(default_factory=lambda: default_onnx_cache(os.environ))
    export_timeout: float = 900.0  # seconds for a first-use ONNX export
    call_timeout: float = 30.0
    boot_timeout: float = 60.0
    shutdown_grace: float = 10.0
    max_restarts: int = 5
    restart_window: float = 60.0
    request_timeout: float = 0.0  # seconds per text, queue wait included; 0 = derived
    max_queued: int = 10_000  # texts waiting for a child, at most; more get Overloaded
    max_child_calls: int = 0  # recycle a child after this many calls; 0 = never
    max_child_rss_mb: int = 0  # recycle a child whose memory is over this (MiB); 0 = never
    rebuild_backoff: float = 1.0  # seconds before the first rebuild of a broken pool
    rebuild_backoff_max: float = 60.0  # the backoff doubles per failed rebuild, up to this
    batch_size: int = 64  # texts per call to a child, at most
    batch_tokens: int = 8192  # estimated tokens per call to a child, at most
    batch_wait: float = 0.002  # seconds a call may wait for other callers' texts
    forward_tokens: int = 1024  # padded tokens per forward pass inside a child
    max_chars: int = 20_000
    worker_cmd: tuple[str, ...] = field(default_factory=default_worker_cmd)
    worker_env: Mapping[str, str] = field(default_factory=dict)
    database_url: str | None = None
    data_dir: Path = field(default_factory=lambda: default_data_dir(os.environ))
    jobs_concurrency: int = 5
    jobs_max_attempts: int = 3
    jobs_backoff: int = 2  # seconds; the wait before retry n is backoff ** n
    jobs_enqueue_cron: str = "0 * * * *"  # enqueue every unclassified post; "" = off
    jobs_prune_cron: str = "30 3 * * *"  # delete finished jobs older than jobs_prune_days
    jobs_rescue_cron: str = "* * * * *"  # re-queue jobs of workers that stopped beating
    jobs_prune_days: float = 7.0
    jobs_heartbeat: float = 10.0  # seconds between a job worker's heartbeats
    jobs_stalled_after: float = 30.0  # seconds without heartbeat before its jobs are rescued
    jobs_poll_interval: float = 5.0  # seconds between polls when LISTEN/NOTIFY is quiet

    def __post_init__(self) -> None:
        positive = (
            "call_timeout",
            "boot_timeout",
            "restart_window",
            "rebuild_backoff",
            "rebuild_backoff_max",
            "jobs_backoff",
            "jobs_prune_days",
            "jobs_heartbeat",
            "jobs_stalled_after",
            "jobs_poll_interval",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.batch_wait < 0:
            raise ConfigError(f"batch_wait must be >= 0, got {self.batch_wait}")
        if self.shutdown_grace < 0:
            raise ConfigError(f"shutdown_grace must be >= 0, got {self.shutdown_grace}")
        if self.jobs_stalled_after <= self.jobs_heartbeat:
            raise ConfigError(
                f"jobs_stalled_after ({self.jobs_stalled_after}) must exceed jobs_heartbeat "
                f"({self.jobs_heartbeat}), or live workers would look stalled"
            )
        if self.request_timeout < 0:
            raise ConfigError(
                f"request_timeout must be >= 0 (0 = derived), got {self.request_timeout}"
            )
        if self.rebuild_backoff_max < self.rebuild_backoff:
            raise ConfigError(
                f"rebuild_backoff_max ({self.rebuild_backoff_max}) must be >= rebuild_backoff "
                f"({self.rebuild_backoff})"
            )
        for name in ("max_child_calls", "max_child_rss_mb"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (0 = off), got {getattr(self, name)}")
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0 (0 = cores // workers), got {self.threads}")
        for name in (
            "workers",
            "batch_size",
            "batch_tokens",
            "forward_tokens",
            "max_queued",
            "jobs_concurrency",
            "jobs_max_attempts",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_restarts < 0:
            raise ConfigError(f"max_restarts must be >= 0, got {self.max_restarts}")
        if self.max_chars < 64:
            raise ConfigError(f"max_chars must be >= 64, got {self.max_chars}")
        if self.quantize not in QUANTIZE:
            raise ConfigError(
                f"quantize must be one of {', '.join(QUANTIZE)}, got {self.quantize!r}"
            )
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if not self.model.strip():
            raise ConfigError("model must name a hub id or a local folder, got ''")
        if not self.worker_cmd:
            raise ConfigError("worker_cmd must not be empty")

    @property
    def resolved_backend(self) -> str:
        """`torch` or `onnx`: auto picks onnx when onnxruntime and the exporter are installed
        and the device is the CPU (the ONNX backend runs on the CPU only)."""
        if self.backend != "auto":
            return self.backend
        if self.device not in ("auto", "cpu"):
            return "torch"
        needed = ("onnxruntime", "onnx", "onnxscript")
        return "onnx" if all(importlib.util.find_spec(m) for m in needed) else "torch"

    @property
    def effective_request_timeout(self) -> float:
        """`request_timeout`, or (when 0) long enough for a replacement child to boot and for
        the call and its solo retry to run: boot_timeout + 2 x call_timeout.

        >>> Settings(boot_timeout=60, call_timeout=30).effective_request_timeout
        120.0
        """
        return self.request_timeout or self.boot_timeout + 2 * self.call_timeout

    @property
    def child_threads(self) -> int:
        """Torch threads per child: `threads`, or (when 0) cores // workers, at least 1."""
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> Settings:
        """Build settings from `VOLFEFE_*` variables (and `DATABASE_URL`), then `overrides`.

        Overrides whose value is None are ignored, so CLI options can be passed straight in.
        """
        values: dict[str, Any] = {}
        for name, (var, convert) in _ENV_VARS.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            try:
                values[name] = convert(raw)
            except ValueError:
                raise ConfigError(f"{var} must be {_KIND[convert]}, got {raw!r}") from None
        values.setdefault("data_dir", default_data_dir(env))
        values.setdefault("onnx_cache", default_onnx_cache(env))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


_KIND: dict[Callable[[str], Any], str] = {
    int: "a whole number",
    float: "a number",
    str: "text",
    Path: "a path",
}
_ENV_VARS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "model": ("VOLFEFE_MODEL", str),
    "revision": ("VOLFEFE_REVISION", str),
    "workers": ("VOLFEFE_WORKERS", int),
    "threads": ("VOLFEFE_THREADS", int),
    "device": ("VOLFEFE_DEVICE", str),
    "quantize": ("VOLFEFE_QUANTIZE", str),
    "backend": ("VOLFEFE_BACKEND", str),
    "onnx_cache": ("VOLFEFE_ONNX_CACHE", Path),
    "export_timeout": ("VOLFEFE_EXPORT_TIMEOUT", float),
    "call_timeout": ("VOLFEFE_CALL_TIMEOUT", float),
    "boot_timeout": ("VOLFEFE_BOOT_TIMEOUT", float),
    "shutdown_grace": ("VOLFEFE_SHUTDOWN_GRACE", float),
    "max_restarts": ("VOLFEFE_MAX_RESTARTS", int),
    "restart_window": ("VOLFEFE_RESTART_WINDOW", float),
    "request_timeout": ("VOLFEFE_REQUEST_TIMEOUT", float),
    "max_queued": ("VOLFEFE_MAX_QUEUED", int),
    "max_child_calls": ("VOLFEFE_MAX_CHILD_CALLS", int),
    "max_child_rss_mb": ("VOLFEFE_MAX_CHILD_RSS_MB", int),
    "rebuild_backoff": ("VOLFEFE_REBUILD_BACKOFF", float),
    "rebuild_backoff_max": ("VOLFEFE_REBUILD_BACKOFF_MAX", float),
    "batch_size": ("VOLFEFE_BATCH_SIZE", int),
    "batch_tokens": ("VOLFEFE_BATCH_TOKENS", int),
    "batch_wait": ("VOLFEFE_BATCH_WAIT", float),
    "forward_tokens": ("VOLFEFE_FORWARD_TOKENS", int),
    "max_chars": ("VOLFEFE_MAX_CHARS", int),
    "database_url": ("DATABASE_URL", str),
    "data_dir": ("VOLFEFE_DATA_DIR", Path),
    "jobs_concurrency": ("VOLFEFE_JOBS_CONCURRENCY", int),
    "jobs_max_attempts": ("VOLFEFE_JOBS_MAX_ATTEMPTS", int),
    "jobs_backoff": ("VOLFEFE_JOBS_BACKOFF", int),
    "jobs_enqueue_cron": ("VOLFEFE_JOBS_ENQUEUE_CRON", str),
    "jobs_prune_cron": ("VOLFEFE_JOBS_PRUNE_CRON", str),
    "jobs_rescue_cron": ("VOLFEFE_JOBS_RESCUE_CRON", str),
    "jobs_prune_days": ("VOLFEFE_JOBS_PRUNE_DAYS", float),
    "jobs_heartbeat": ("VOLFEFE_JOBS_HEARTBEAT", float),
    "jobs_stalled_after": ("VOLFEFE_JOBS_STALLED_AFTER", float),
    "jobs_poll_interval": ("VOLFEFE_JOBS_POLL_INTERVAL", float),
}
