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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from volfefe.errors import ConfigError
from volfefe.protocol import DEFAULT_MODEL, GUARDED_SCHEMES, QUANTIZE_SCHEMES, default_onnx_cache

CHILD_MODULE = "volfefe.child"
DEVICES = ("auto", "cpu", "cuda", "mps")
BACKENDS = ("auto", "torch", "onnx", "openvino")
ONNX_MODULES = ("onnxruntime", "onnx", "onnxscript")
OPENVINO_MODULES = ("openvino", "nncf")
RUNTIMES = {"onnx": "onnxruntime", "openvino": "openvino"}  # what a child of each backend imports
SWITCH = ("on", "off")


def installed(modules: tuple[str, ...]) -> bool:
    """True when every one of these modules can be imported (nothing is imported)."""
    return all(importlib.util.find_spec(m) for m in modules)


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


ROOT_DATA_DIR = Path("/var/lib/volfefe")


def default_data_dir(env: Mapping[str, str], euid: int | None = None) -> Path:
    """Where the embedded database lives: `$XDG_DATA_HOME/volfefe`, else `/var/lib/volfefe`
    for root, else `~/.local/share/volfefe`.

    As root, pgserver runs PostgreSQL as the user `pgserver` and makes every parent folder of
    the data directory readable and traversable by all; under /var/lib they already are,
    while under /root that would open root's home to every user.

    >>> default_data_dir({}, euid=0), default_data_dir({"XDG_DATA_HOME": "/x"}, euid=0)
    (PosixPath('/var/lib/volfefe'), PosixPath('/x/volfefe'))
    """
    if env.get("XDG_DATA_HOME"):
        return Path(env["XDG_DATA_HOME"]) / "volfefe"
    if (os.geteuid() if euid is None else euid) == 0:
        return ROOT_DATA_DIR
    return Path.home() / ".local" / "share" / "volfefe"


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
    quantize: str = "none"  # one of QUANTIZE_SCHEMES (bf16 and the static ones: openvino)
    backend: str = "auto"  # auto: the fastest installed backend for `quantize` (resolved_backend)
    onnx_cache: Path = field(default_factory=lambda: default_onnx_cache(os.environ))
    export_timeout: float = 900.0  # seconds for a first-use ONNX/OpenVINO export
    calibration_size: int = 300  # static int8: texts that calibrate activation ranges
    guard_size: int = 100  # guarded schemes: held-out texts the accuracy guard scores
    guard_min_agreement: float = 0.97  # guarded: share of labels equal to fp32's, at least
    guard_max_dp: float = 0.2  # guarded: largest probability difference to fp32, at most
    hub_timeout: float = 10.0  # seconds for the hub to answer (resolving a revision, metadata)
    download_timeout: float = 3600.0  # seconds for downloading a hub model's files, in all
    call_timeout: float = 30.0
    boot_timeout: float = 60.0
    shutdown_grace: float = 10.0
    max_restarts: int = 5
    restart_window: float = 60.0
    request_timeout: float = 0.0  # seconds per text, queue wait included; 0 = derived
    max_queued: int = 10_000  # texts waiting for a child, at most; more get Overloaded
    max_child_calls: int = 0  # recycle a child after this many calls; 0 = never
    max_child_rss_mb: int = 0  # recycle a child whose memory is over this (MiB); 0 = never
    idle_ping: float = 10.0  # seconds an idle child goes before it must answer a ping; 0 = never
    rebuild_backoff: float = 1.0  # seconds before the first rebuild of a broken pool
    rebuild_backoff_max: float = 60.0  # the backoff doubles per failed rebuild, up to this
    batch_size: int = 64  # texts per call to a child, at most
    batch_tokens: int = 512  # tokens in all a call gathers from waiting requests (see README)
    batch_wait: float = 0.002  # seconds a call may wait for other callers' texts
    forward_tokens: int = 1024  # padded tokens per forward pass, and per run of a caller's texts
    max_chars: int = 20_000
    worker_cmd: tuple[str, ...] = field(default_factory=default_worker_cmd)
    worker_env: Mapping[str, str] = field(default_factory=dict)
    database_url: str | None = None
    data_dir: Path = field(default_factory=lambda: default_data_dir(os.environ))
    jobs_concurrency: int = 0  # jobs in flight per job worker; 0 = batch_size x (workers + 1)
    jobs_max_attempts: int = 3
    jobs_backoff: int = 2  # seconds; the wait before retry n is backoff ** n
    jobs_enqueue_cron: str = "0 * * * *"  # enqueue every unclassified post; "" = off
    jobs_prune_cron: str = "30 3 * * *"  # delete finished jobs older than jobs_prune_days
    jobs_rescue_cron: str = "* * * * *"  # re-queue jobs of workers that stopped beating
    jobs_prune_days: float = 7.0
    jobs_heartbeat: float = 10.0  # seconds between a job worker's heartbeats
    jobs_stalled_after: float = 30.0  # seconds without heartbeat before its jobs are rescued
    jobs_poll_interval: float = 1.0  # seconds between polls: what a missed NOTIFY costs
    # "on"/"off": written into the database by `db migrate` (the triggers on contents read it
    # there); None leaves the database's choice alone (a new database starts "on").
    auto_enqueue: str | None = None
    api_token: str | None = field(default=None, repr=False)  # Bearer token of the write routes
    api_max_body: int = 1_048_576  # bytes per HTTP request body
    api_max_items: int = 256  # texts per /classify call, posts per /posts call
    api_max_text_chars: int = 100_000  # characters per text or post sent over HTTP
    http_header_timeout: float = 10.0  # seconds a connection has to send a request's head
    http_keep_alive: int = 5  # seconds an idle keep-alive HTTP connection is kept open
    http_max_header_bytes: int = 16_384  # bytes of a request line and headers (400 past it)
    http_max_connections: int = 1_000  # open connections (streams too); more are answered 503
    login_max_failures: int = 5  # failed /login tries per client address per login_window
    login_window: float = 300.0  # seconds over which login_max_failures are counted
    login_session_max_age: float = 43_200.0  # seconds a dashboard login (its cookie) lasts
    jobs_max_rebuilds: int = 3  # a job worker whose classifier fails this many rebuilds exits
    db_connect_timeout: float = 10.0  # seconds to open a database connection
    db_statement_timeout: float = 60.0  # seconds a statement may run on the server; 0 = none
    db_keepalive: float = 10.0  # seconds of silence before TCP keepalive probes (3, idle/3 apart)

    def __post_init__(self) -> None:
        positive = (
            "call_timeout",
            "boot_timeout",
            "hub_timeout",
            "download_timeout",
            "restart_window",
            "rebuild_backoff",
            "rebuild_backoff_max",
            "jobs_backoff",
            "jobs_prune_days",
            "jobs_heartbeat",
            "jobs_stalled_after",
            "jobs_poll_interval",
            "db_connect_timeout",
            "db_keepalive",
            "http_header_timeout",
            "login_window",
            "login_session_max_age",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise _invalid(name, f"must be > 0, got {getattr(self, name)}")
        if self.batch_wait < 0:
            raise _invalid("batch_wait", f"must be >= 0, got {self.batch_wait}")
        if self.db_statement_timeout < 0:
            raise _invalid(
                "db_statement_timeout", f"must be >= 0 (0 = none), got {self.db_statement_timeout}"
            )
        if self.shutdown_grace < 0:
            raise _invalid("shutdown_grace", f"must be >= 0, got {self.shutdown_grace}")
        if self.idle_ping < 0:
            raise _invalid("idle_ping", f"must be >= 0 (0 = never), got {self.idle_ping}")
        if self.jobs_stalled_after <= self.jobs_heartbeat:
            raise _invalid(
                "jobs_stalled_after",
                f"({self.jobs_stalled_after}) must exceed jobs_heartbeat "
                f"({self.jobs_heartbeat}), or live workers would look stalled",
            )
        if self.request_timeout < 0:
            raise _invalid(
                "request_timeout", f"must be >= 0 (0 = derived), got {self.request_timeout}"
            )
        if self.rebuild_backoff_max < self.rebuild_backoff:
            raise _invalid(
                "rebuild_backoff_max",
                f"({self.rebuild_backoff_max}) must be >= rebuild_backoff ({self.rebuild_backoff})",
            )
        for name in ("max_child_calls", "max_child_rss_mb"):
            if getattr(self, name) < 0:
                raise _invalid(name, f"must be >= 0 (0 = off), got {getattr(self, name)}")
        if self.threads < 0:
            raise _invalid("threads", f"must be >= 0 (0 = cores // workers), got {self.threads}")
        for name in (
            "workers",
            "batch_size",
            "batch_tokens",
            "forward_tokens",
            "max_queued",
            "jobs_max_attempts",
            "jobs_max_rebuilds",
        ):
            if getattr(self, name) < 1:
                raise _invalid(name, f"must be >= 1, got {getattr(self, name)}")
        if self.jobs_concurrency < 0:
            raise _invalid(
                "jobs_concurrency",
                f"must be >= 0 (0 = batch_size x (workers + 1)), got {self.jobs_concurrency}",
            )
        for name in (
            "api_max_body",
            "api_max_items",
            "api_max_text_chars",
            "http_keep_alive",
            "http_max_connections",
            "login_max_failures",
        ):
            if getattr(self, name) < 1:
                raise _invalid(name, f"must be >= 1, got {getattr(self, name)}")
        if self.http_max_header_bytes < 1024:
            raise _invalid(
                "http_max_header_bytes", f"must be >= 1024, got {self.http_max_header_bytes}"
            )
        if self.api_token is not None and len(self.api_token) < 16:
            raise _invalid(
                "api_token", f"must be at least 16 characters, got {len(self.api_token)}"
            )
        if self.max_restarts < 0:
            raise _invalid("max_restarts", f"must be >= 0, got {self.max_restarts}")
        if self.max_chars < 64:
            raise _invalid("max_chars", f"must be >= 64, got {self.max_chars}")
        for name, allowed in (
            ("quantize", QUANTIZE_SCHEMES),
            ("backend", BACKENDS),
            ("device", DEVICES),
        ):
            if getattr(self, name) not in allowed:
                raise _invalid(
                    name, f"must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        if self.auto_enqueue is not None and self.auto_enqueue not in SWITCH:
            raise _invalid("auto_enqueue", f"must be on or off, got {self.auto_enqueue!r}")
        for name in ("calibration_size", "guard_size"):
            if getattr(self, name) < 1:
                raise _invalid(name, f"must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.guard_min_agreement <= 1:
            raise _invalid(
                "guard_min_agreement", f"must be between 0 and 1, got {self.guard_min_agreement}"
            )
        if not 0 <= self.guard_max_dp <= 1:
            raise _invalid("guard_max_dp", f"must be between 0 and 1, got {self.guard_max_dp}")
        if self.quantize in GUARDED_SCHEMES and self.device not in ("auto", "cpu"):
            raise _invalid(
                "quantize",
                f"{self.quantize} runs on the CPU only (OpenVINO), not on {self.device}",
            )
        if self.quantize in GUARDED_SCHEMES and self.backend in ("torch", "onnx"):
            raise _invalid(
                "quantize",
                f"{self.quantize} needs the openvino backend, not {self.backend} "
                "(set VOLFEFE_BACKEND=openvino or auto)",
            )
        if not self.model.strip():
            raise _invalid("model", "must name a hub id or a local folder, got ''")
        if not self.worker_cmd:
            raise _invalid("worker_cmd", "must not be empty")

    @property
    def resolved_backend(self) -> str:
        """`torch`, `onnx` or `openvino`: what `auto` means on this install.

        Not on the CPU: torch. Otherwise the fastest installed backend for `quantize`
        (issue 13's measurements): none -> openvino, onnx, torch; int8 -> onnx (dynamic),
        openvino (weights only), torch; int8-static, bf16, int8-static-bf16 -> openvino
        (ConfigError when missing). An explicit onnx or openvino backend whose runtime is not
        installed is a ConfigError too, even when its export is already cached.
        """
        if self.backend != "auto":
            runtime = RUNTIMES.get(self.backend)
            if runtime is not None and not installed((runtime,)):
                raise ConfigError(
                    f"backend {self.backend} needs the {self.backend} extra ({runtime} is not "
                    f"installed): pip install 'volfefe[{self.backend}]', or set "
                    "VOLFEFE_BACKEND=torch",
                    setting="backend",
                )
            return self.backend
        if self.device not in ("auto", "cpu"):
            return "torch"
        order = {"none": ("openvino", "onnx"), "int8": ("onnx", "openvino")}.get(
            self.quantize, ("openvino",)
        )
        modules = {"openvino": OPENVINO_MODULES, "onnx": ONNX_MODULES}
        for backend in order:
            if installed(modules[backend]):
                return backend
        if self.quantize in GUARDED_SCHEMES:
            raise ConfigError(
                f"quantize {self.quantize} needs the openvino extra: "
                "pip install 'volfefe[openvino]'"
            )
        return "torch"

    @property
    def job_slots(self) -> int:
        """Jobs one job worker runs at once: `jobs_concurrency`, or (when 0) enough to keep
        every child's batch full while the next batch waits, as `classify` does.

        >>> Settings(workers=1, batch_size=64).job_slots, Settings(jobs_concurrency=5).job_slots
        (128, 5)
        """
        return self.jobs_concurrency or self.batch_size * (self.workers + 1)

    @property
    def effective_request_timeout(self) -> float:
        """`request_timeout`, or (when 0) long enough for a replacement child to boot and for
        the call and its solo retry to run: boot_timeout + 2 x call_timeout.

        >>> Settings(boot_timeout=60, call_timeout=30).effective_request_timeout
        120
        """
        return self.request_timeout or self.boot_timeout + 2 * self.call_timeout

    @property
    def child_threads(self) -> int:
        """Torch threads per child: `threads`, or (when 0) cores // workers, at least 1."""
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_env(self, names: Iterable[str] | None = None) -> dict[str, str]:
        """The variables that `from_env` reads back into these settings, for a subprocess that
        must run with them: one `VOLFEFE_*` (or `DATABASE_URL`) per field that has one, all of
        them or only the fields in `names`. Fields that are None are left out, and so are
        `worker_cmd` and `worker_env`, which have no variable. Secrets (`database_url`,
        `api_token`) are included unless `names` leaves them out.

        >>> Settings(workers=3, call_timeout=2.5).to_env(["workers", "call_timeout"])
        {'VOLFEFE_WORKERS': '3', 'VOLFEFE_CALL_TIMEOUT': '2.5'}
        """
        env: dict[str, str] = {}
        for name in _ENV_VARS if names is None else names:
            if name not in _ENV_VARS:
                raise ValueError(f"setting {name!r} has no environment variable")
            value = getattr(self, name)
            if value is not None:
                env[_ENV_VARS[name][0]] = str(value)
        return env

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
                raise ConfigError(
                    f"{var} must be {_KIND[convert]}, got {raw!r}", setting=name
                ) from None
        values.setdefault("data_dir", default_data_dir(env))
        values.setdefault("onnx_cache", default_onnx_cache(env))
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        try:
            return cls(**values)
        except ConfigError as exc:
            culprit = exc.setting
            if culprit is None or culprit in given or culprit not in _ENV_VARS:
                raise
            var = _ENV_VARS[culprit][0]
            raise ConfigError(f"{var}={env.get(var)!r}: {exc}", setting=culprit) from None


def _invalid(name: str, problem: str) -> ConfigError:
    """The error for field `name`: `workers must be >= 1, got 0`."""
    return ConfigError(f"{name} {problem}", setting=name)


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
    "calibration_size": ("VOLFEFE_CALIBRATION_SIZE", int),
    "guard_size": ("VOLFEFE_GUARD_SIZE", int),
    "guard_min_agreement": ("VOLFEFE_GUARD_MIN_AGREEMENT", float),
    "guard_max_dp": ("VOLFEFE_GUARD_MAX_DP", float),
    "hub_timeout": ("VOLFEFE_HUB_TIMEOUT", float),
    "download_timeout": ("VOLFEFE_DOWNLOAD_TIMEOUT", float),
    "call_timeout": ("VOLFEFE_CALL_TIMEOUT", float),
    "boot_timeout": ("VOLFEFE_BOOT_TIMEOUT", float),
    "shutdown_grace": ("VOLFEFE_SHUTDOWN_GRACE", float),
    "max_restarts": ("VOLFEFE_MAX_RESTARTS", int),
    "restart_window": ("VOLFEFE_RESTART_WINDOW", float),
    "request_timeout": ("VOLFEFE_REQUEST_TIMEOUT", float),
    "max_queued": ("VOLFEFE_MAX_QUEUED", int),
    "max_child_calls": ("VOLFEFE_MAX_CHILD_CALLS", int),
    "max_child_rss_mb": ("VOLFEFE_MAX_CHILD_RSS_MB", int),
    "idle_ping": ("VOLFEFE_IDLE_PING", float),
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
    "auto_enqueue": ("VOLFEFE_AUTO_ENQUEUE", str),
    "api_token": ("VOLFEFE_API_TOKEN", str),
    "api_max_body": ("VOLFEFE_API_MAX_BODY", int),
    "api_max_items": ("VOLFEFE_API_MAX_ITEMS", int),
    "api_max_text_chars": ("VOLFEFE_API_MAX_TEXT_CHARS", int),
    "http_header_timeout": ("VOLFEFE_HTTP_HEADER_TIMEOUT", float),
    "http_keep_alive": ("VOLFEFE_HTTP_KEEP_ALIVE", int),
    "http_max_header_bytes": ("VOLFEFE_HTTP_MAX_HEADER_BYTES", int),
    "http_max_connections": ("VOLFEFE_HTTP_MAX_CONNECTIONS", int),
    "login_max_failures": ("VOLFEFE_LOGIN_MAX_FAILURES", int),
    "login_window": ("VOLFEFE_LOGIN_WINDOW", float),
    "login_session_max_age": ("VOLFEFE_LOGIN_SESSION_MAX_AGE", float),
    "jobs_max_rebuilds": ("VOLFEFE_JOBS_MAX_REBUILDS", int),
    "db_connect_timeout": ("VOLFEFE_DB_CONNECT_TIMEOUT", float),
    "db_statement_timeout": ("VOLFEFE_DB_STATEMENT_TIMEOUT", float),
    "db_keepalive": ("VOLFEFE_DB_KEEPALIVE", float),
}
