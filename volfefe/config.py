"""Settings: the one place that reads the environment, and the one declaration of each setting.

Each field of `Settings` is declared once with `setting(...)`: its variable, default, check,
section and meaning. The environment reader (`from_env`, `to_env`), the range checks, the
command line's global options (volfefe/cli/main.py) and docs/configuration.md
(volfefe/cli/reference.py) all come from those declarations. Everything below the CLI
receives a `Settings` object explicitly. Deadlines are seconds.

>>> s = Settings.from_env({"VOLFEFE_WORKERS": "2", "VOLFEFE_CALL_TIMEOUT": "5"})
>>> (s.workers, s.call_timeout)
(2, 5.0)
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import typing
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from volfefe.errors import ConfigError
from volfefe.protocol import (
    DEFAULT_FORWARD_TOKENS,
    DEFAULT_HUB_TIMEOUT,
    DEFAULT_MAX_CHARS,
    DEFAULT_MODEL,
    DEFAULT_SHORT_TOKENS,
    GUARDED_SCHEMES,
    PREEMPT_MODES,
    QUANTIZE_SCHEMES,
    default_export_cache,
)

CHILD_MODULE = "volfefe.child"
DEVICES = ("auto", "cpu", "cuda", "mps")
BACKENDS = ("auto", "torch", "onnx", "openvino")
ONNX_MODULES = ("onnxruntime", "onnx", "onnxscript")
OPENVINO_MODULES = ("openvino", "nncf")
RUNTIMES = {"onnx": "onnxruntime", "openvino": "openvino"}  # what a child of each backend imports
SWITCH = ("on", "off")
SCHEDULES = ("oldest", "shortest")  # VOLFEFE_SCHEDULE: which waiting request goes next


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


SPEC = "volfefe"  # the key of a setting's Spec in its field's metadata
Check = Callable[[Any], "str | None"]  # a value's problem ("must be >= 1, got 0"), or None

# The sections of the configuration reference, in its order.
MODEL = "Model"
CHILDREN = "Children"
BATCHING = "Batching"
EXPORTS = "Exports and numerics"
DATABASE = "Database"
JOBS = "Background jobs"
HTTP = "HTTP API and dashboard"
SINKS = "Sinks (webhooks and the message bus)"
SECTIONS = (MODEL, CHILDREN, BATCHING, EXPORTS, DATABASE, JOBS, HTTP, SINKS)


@dataclass(frozen=True)
class Spec:
    """Everything about a setting but its name, type and default: its variable, where the
    reference lists it, what it means, what values it takes, and whether it is a global CLI
    option (`--name-with-dashes`)."""

    env: str
    section: str
    doc: str
    check: Check | None = None
    option: bool = False
    secret: bool = False
    shown: str | None = None  # the default as the reference shows it, when not its value
    old_env: str | None = None  # the variable's former name: still read, with a warning


def setting(
    *,
    env: str,
    section: str,
    doc: str,
    default: Any = None,
    factory: Callable[[], Any] | None = None,
    check: Check | None = None,
    option: bool = False,
    secret: bool = False,
    shown: str | None = None,
    old_env: str | None = None,
) -> Any:
    """Declare a field of Settings once: the environment reader, the checks, the CLI's global
    options and docs/configuration.md all come from this."""
    meta = {SPEC: Spec(env, section, doc, check, option, secret, shown, old_env)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta, repr=not secret)
    return field(default=default, metadata=meta, repr=not secret)


def at_least(low: float, meaning: str = "") -> Check:
    """Values >= `low`; `meaning` says what `low` means (`0 = never`).

    >>> at_least(1)(0), at_least(0, "0 = off")(-1), at_least(1)(3) is None
    ('must be >= 1, got 0', 'must be >= 0 (0 = off), got -1', True)
    """
    note = f" ({meaning})" if meaning else ""
    return lambda value: None if value >= low else f"must be >= {low}{note}, got {value}"


def positive(value: float) -> str | None:
    """Values > 0."""
    return None if value > 0 else f"must be > 0, got {value}"


def fraction(value: float) -> str | None:
    """Values from 0 to 1."""
    return None if 0 <= value <= 1 else f"must be between 0 and 1, got {value}"


def one_of(allowed: tuple[str, ...]) -> Check:
    """One of `allowed` (a CLI option of it is a choice)."""

    def check(value: str) -> str | None:
        return None if value in allowed else f"must be one of {', '.join(allowed)}, got {value!r}"

    check.choices = allowed  # type: ignore[attr-defined]
    return check


def switch(value: str | None) -> str | None:
    """on, off, or unset."""
    return None if value is None or value in SWITCH else f"must be on or off, got {value!r}"


def token(value: str | None) -> str | None:
    """Unset, or a secret of 16 characters or more."""
    if value is None or len(value) >= 16:
        return None
    return f"must be at least 16 characters, got {len(value)}"


def not_blank(value: str) -> str | None:
    """A name that is not blank."""
    return None if value.strip() else "must name a hub id or a local folder, got ''"


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

    model: str = setting(
        default=DEFAULT_MODEL,
        env="VOLFEFE_MODEL",
        section=MODEL,
        check=not_blank,
        option=True,
        doc="hub id or local folder of the model",
    )
    revision: str | None = setting(
        default=None,
        env="VOLFEFE_REVISION",
        section=MODEL,
        option=True,
        shown="main",
        doc="hub revision (branch, tag or commit); unset = main",
    )
    workers: int = setting(
        factory=lambda: default_layout()[0],
        env="VOLFEFE_WORKERS",
        section=CHILDREN,
        check=at_least(1),
        option=True,
        shown="cores / 2 (at least 1)",
        doc="child processes",
    )
    threads: int = setting(
        default=0,
        env="VOLFEFE_THREADS",
        section=CHILDREN,
        check=at_least(0, "0 = cores // workers"),
        option=True,
        doc=(
            "torch threads per child; 0 = cores / workers, so children x threads never "
            "oversubscribe the cores"
        ),
    )
    device: str = setting(
        default="auto",
        env="VOLFEFE_DEVICE",
        section=MODEL,
        check=one_of(DEVICES),
        option=True,
        doc="`auto` (cuda, then mps, else cpu), `cpu`, `cuda`, `mps`",
    )
    quantize: str = setting(
        default="none",
        env="VOLFEFE_QUANTIZE",
        section=EXPORTS,
        check=one_of(QUANTIZE_SCHEMES),
        option=True,
        doc=(
            "`int8`: int8 weights (torch and onnx: dynamic int8 Linear layers; openvino: weights "
            "only); `int8-static`: int8 weights and activations, calibrated, guarded; `bf16`: "
            "fp32 weights, bf16 arithmetic, guarded; `int8-static-bf16`: int8-static with its "
            "float parts in bf16, guarded (the last three openvino only; bf16 needs a CPU with "
            "bf16 arithmetic, e.g. AVX-512 BF16 or AMX). `model_version` gets `+int8`, "
            "`+onnx-int8`, `+openvino-int8`, `+openvino-int8-static`, `+openvino-bf16` or "
            "`+openvino-int8-static-bf16`"
        ),
    )
    backend: str = setting(
        default="auto",
        env="VOLFEFE_BACKEND",
        section=MODEL,
        check=one_of(BACKENDS),
        option=True,
        doc=(
            "`torch`, `onnx`, `openvino`, or `auto`: on the CPU the fastest installed backend for"
            " `VOLFEFE_QUANTIZE` (none: openvino, onnx, torch; int8: onnx, openvino, torch; "
            "int8-static, bf16, int8-static-bf16: openvino), else torch; falls back to torch if "
            "an export fails, from a refused int8-static-bf16 export to int8-static, from a "
            "refused int8-static export to dynamic int8, from a refused bf16 export to none, and "
            "from a bf16 scheme this CPU cannot run (`Bf16Unavailable`) to its f32 counterpart"
        ),
    )
    export_cache: Path = setting(
        factory=lambda: default_export_cache(os.environ),
        env="VOLFEFE_EXPORT_CACHE",
        old_env="VOLFEFE_ONNX_CACHE",
        section=EXPORTS,
        shown="`$HF_HOME/volfefe-onnx` (`~/.cache/huggingface/volfefe-onnx`)",
        doc=(
            "the export cache: where ONNX and OpenVINO exports (and the cached digests of weights"
            " files) live; must not be writable by other users"
        ),
    )
    export_timeout: float = setting(
        default=900.0,
        env="VOLFEFE_EXPORT_TIMEOUT",
        section=EXPORTS,
        check=positive,
        doc="seconds a first-use export (with a guarded scheme: calibration and guard) may take",
    )
    calibration_size: int = setting(
        default=300,
        env="VOLFEFE_CALIBRATION_SIZE",
        section=EXPORTS,
        check=at_least(1),
        doc="int8-static, int8-static-bf16: posts that calibrate the activation ranges, at most",
    )
    guard_size: int = setting(
        default=100,
        env="VOLFEFE_GUARD_SIZE",
        section=EXPORTS,
        check=at_least(1),
        doc=(
            "guarded schemes: held-out posts the accuracy guard scores, at most (never more than "
            "a third of the texts given)"
        ),
    )
    guard_min_agreement: float = setting(
        default=0.97,
        env="VOLFEFE_GUARD_MIN_AGREEMENT",
        section=EXPORTS,
        check=fraction,
        doc="a guarded export is refused when fewer held-out labels than this share equal fp32's",
    )
    guard_max_dp: float = setting(
        default=0.2,
        env="VOLFEFE_GUARD_MAX_DP",
        section=EXPORTS,
        check=fraction,
        doc=(
            "a guarded export is refused when any class probability of any held-out post differs "
            "from fp32's by more"
        ),
    )
    hub_timeout: float = setting(
        default=DEFAULT_HUB_TIMEOUT,
        env="VOLFEFE_HUB_TIMEOUT",
        section=MODEL,
        check=positive,
        doc=(
            "seconds the hub may take to answer (resolving the revision, each file's metadata); "
            "an unreachable hub fails the command at once unless the revision is cached"
        ),
    )
    download_timeout: float = setting(
        default=3600.0,
        env="VOLFEFE_DOWNLOAD_TIMEOUT",
        section=MODEL,
        check=positive,
        doc=(
            "seconds downloading a hub model's files may take in all (`model pull` and first "
            "use); a later run resumes"
        ),
    )
    call_timeout: float = setting(
        default=30.0,
        env="VOLFEFE_CALL_TIMEOUT",
        section=CHILDREN,
        check=positive,
        option=True,
        doc="seconds per call to a child",
    )
    boot_timeout: float = setting(
        default=60.0,
        env="VOLFEFE_BOOT_TIMEOUT",
        section=CHILDREN,
        check=positive,
        option=True,
        doc="seconds from spawn to the child's ready line",
    )
    shutdown_grace: float = setting(
        default=10.0,
        env="VOLFEFE_SHUTDOWN_GRACE",
        section=CHILDREN,
        check=at_least(0),
        doc="seconds in-flight calls get at close",
    )
    max_restarts: int = setting(
        default=5,
        env="VOLFEFE_MAX_RESTARTS",
        section=CHILDREN,
        check=at_least(0),
        doc=(
            "more child restarts than this within `VOLFEFE_RESTART_WINDOW` break the pool (a "
            "failure a poison text explains does not count)"
        ),
    )
    restart_window: float = setting(
        default=60.0,
        env="VOLFEFE_RESTART_WINDOW",
        section=CHILDREN,
        check=positive,
        doc="seconds over which `VOLFEFE_MAX_RESTARTS` is counted",
    )
    request_timeout: float = setting(
        default=0.0,
        env="VOLFEFE_REQUEST_TIMEOUT",
        section=CHILDREN,
        check=at_least(0, "0 = derived"),
        doc=(
            "seconds a text may take, queue wait included (`RequestTimeout`); 0 = boot timeout + "
            "2 x call timeout"
        ),
    )
    max_queued: int = setting(
        default=10_000,
        env="VOLFEFE_MAX_QUEUED",
        section=CHILDREN,
        check=at_least(1),
        doc="texts that may wait for a child; a call past it gets `Overloaded` at once",
    )
    max_child_calls: int = setting(
        default=0,
        env="VOLFEFE_MAX_CHILD_CALLS",
        section=CHILDREN,
        check=at_least(0, "0 = off"),
        doc="retire a child (closed gracefully, replaced) after this many calls; 0 = never",
    )
    max_child_rss_mb: int = setting(
        default=0,
        env="VOLFEFE_MAX_CHILD_RSS_MB",
        section=CHILDREN,
        check=at_least(0, "0 = off"),
        doc="retire a child whose resident memory is over this many MiB after a call; 0 = never",
    )
    idle_ping: float = setting(
        default=10.0,
        env="VOLFEFE_IDLE_PING",
        section=CHILDREN,
        check=at_least(0, "0 = never"),
        doc=(
            "seconds an idle child may go before it must answer a ping (within 5 s); one that "
            "does not (frozen, stuck) is replaced; 0 = never"
        ),
    )
    rebuild_backoff: float = setting(
        default=1.0,
        env="VOLFEFE_REBUILD_BACKOFF",
        section=CHILDREN,
        check=positive,
        doc=(
            "seconds before rebuilding a broken pool, doubled per failed rebuild up to "
            "`VOLFEFE_REBUILD_BACKOFF_MAX`"
        ),
    )
    rebuild_backoff_max: float = setting(
        default=60.0,
        env="VOLFEFE_REBUILD_BACKOFF_MAX",
        section=CHILDREN,
        check=positive,
        doc="the longest wait before rebuilding a broken pool",
    )
    batch_size: int = setting(
        default=64,
        env="VOLFEFE_BATCH_SIZE",
        section=BATCHING,
        check=at_least(1),
        doc=(
            "texts per call to a child, at most (and per `classify` batch, which also keeps to "
            "`VOLFEFE_FORWARD_TOKENS`)"
        ),
    )
    batch_tokens: int = setting(
        default=512,
        env="VOLFEFE_BATCH_TOKENS",
        section=BATCHING,
        check=at_least(1),
        doc=(
            "tokens in all, counted with the model's tokenizer, that dynamic batching gathers "
            "into one call from waiting requests (the first request of a call goes whatever its "
            "size); a post that arrives while a call runs waits for the whole call, so this is "
            "the latency knob"
        ),
    )
    batch_wait: float = setting(
        default=0.002,
        env="VOLFEFE_BATCH_WAIT",
        section=BATCHING,
        check=at_least(0),
        doc="seconds a call may wait for other callers' texts",
    )
    forward_tokens: int = setting(
        default=DEFAULT_FORWARD_TOKENS,
        env="VOLFEFE_FORWARD_TOKENS",
        section=BATCHING,
        check=at_least(1),
        doc=(
            "padded tokens (texts x the longest one's tokens) per forward pass inside a child "
            "(length-sorted), and per request a caller's texts are cut into, so a bulk request is"
            " one call and one pass; keep a pass of this many tokens well inside "
            "`VOLFEFE_CALL_TIMEOUT` on your CPU"
        ),
    )
    preempt: str = setting(
        default="off",
        env="VOLFEFE_PREEMPT",
        section=BATCHING,
        check=one_of(PREEMPT_MODES),
        doc=(
            "`off`, or `layers`: the child runs a layered ONNX export (one graph for the "
            "embeddings, one per encoder layer, one for the head: the same scores) and, "
            "between two layers of a long request, answers every shorter request waiting on "
            "its pipe. Needs the onnx backend (`auto` picks it) and `VOLFEFE_QUANTIZE` none "
            "or int8. While a child runs a long call, the pool sends it the short requests "
            "(`VOLFEFE_SHORT_TOKENS`) as they arrive, and behind a call of long posts (over "
            "256 tokens) the medium ones, in express calls answered between two layers"
        ),
    )
    max_chars: int = setting(
        default=DEFAULT_MAX_CHARS,
        env="VOLFEFE_MAX_CHARS",
        section=BATCHING,
        check=at_least(64),
        doc="longer texts are cut (by characters) before they are sent to a child",
    )
    schedule: str = setting(
        default="oldest",
        env="VOLFEFE_SCHEDULE",
        section=BATCHING,
        check=one_of(SCHEDULES),
        doc=(
            "which waiting request a free child's next call is built around: `oldest` (first "
            "come, first served), or `shortest` (the fewest tokens per text, so a short post "
            "never waits for the long ones queued before it; a request that has waited "
            "`VOLFEFE_SCHEDULE_AGING` goes first all the same, so none starves)"
        ),
    )
    schedule_aging: float = setting(
        default=0.1,
        env="VOLFEFE_SCHEDULE_AGING",
        section=BATCHING,
        check=positive,
        doc=(
            "seconds after which a waiting request goes before shorter ones "
            "(`VOLFEFE_SCHEDULE=shortest`) and may take the child kept for short posts "
            "(`VOLFEFE_SHORT_RESERVE`): the most that either makes a long post wait"
        ),
    )
    short_reserve: int = setting(
        default=0,
        env="VOLFEFE_SHORT_RESERVE",
        section=BATCHING,
        check=at_least(0, "0 = off"),
        doc=(
            "idle children kept for short posts (at most `VOLFEFE_WORKERS` - 1): a call of "
            "longer texts goes to a child only while more than this many are idle, unless its "
            "request has waited `VOLFEFE_SCHEDULE_AGING`, so a short post that arrives while "
            "long ones run finds a free child"
        ),
    )
    short_tokens: int = setting(
        default=DEFAULT_SHORT_TOKENS,
        env="VOLFEFE_SHORT_TOKENS",
        section=BATCHING,
        check=at_least(1),
        doc=(
            "tokens per text, at most, of a short post for `VOLFEFE_SHORT_RESERVE`, for "
            "`VOLFEFE_SCHEDULE=shortest` (a call built around short posts takes only short "
            "ones) and for `VOLFEFE_PREEMPT=layers` (short posts go in an express call to a "
            "child running a call that holds a longer text, medium ones only to a child "
            "running a long one; the child runs a pass of texts this short in one graph, never "
            "paused); the short length class of /metrics is 64"
        ),
    )
    worker_cmd: tuple[str, ...] = field(
        default_factory=default_worker_cmd
    )  # no variable: set in code
    worker_env: Mapping[str, str] = field(default_factory=dict)  # no variable: set in code
    database_url: str | None = setting(
        default=None,
        env="DATABASE_URL",
        section=DATABASE,
        shown="unset",
        doc="PostgreSQL to use; unset = the embedded server",
    )
    data_dir: Path = setting(
        factory=lambda: default_data_dir(os.environ),
        env="VOLFEFE_DATA_DIR",
        section=DATABASE,
        shown=(
            "`$XDG_DATA_HOME/volfefe`, else `/var/lib/volfefe` as root, else "
            "`~/.local/share/volfefe`"
        ),
        doc="where the embedded server keeps its data (`pgdata/`)",
    )
    jobs_concurrency: int = setting(
        default=0,
        env="VOLFEFE_JOBS_CONCURRENCY",
        section=JOBS,
        check=at_least(0, "0 = batch_size x (workers + 1)"),
        doc="jobs one `jobs worker` keeps in flight; 0 = batch size x (workers + 1)",
    )
    jobs_coalesce: str = setting(
        default="on",
        env="VOLFEFE_JOBS_COALESCE",
        section=JOBS,
        check=one_of(SWITCH),
        doc=(
            "`on`: the jobs of a `jobs worker` that load their posts, or store their results, at "
            "the same moment share one statement (each keeps its own job, attempts and outcome); "
            "`off`: one statement per job"
        ),
    )
    jobs_max_attempts: int = setting(
        default=3,
        env="VOLFEFE_JOBS_MAX_ATTEMPTS",
        section=JOBS,
        check=at_least(1),
        doc="attempts per job in total",
    )
    jobs_backoff: int = setting(
        default=2,
        env="VOLFEFE_JOBS_BACKOFF",
        section=JOBS,
        check=positive,
        doc="seconds; retry n waits backoff^n",
    )
    jobs_enqueue_cron: str = setting(
        default="0 * * * *",
        env="VOLFEFE_JOBS_ENQUEUE_CRON",
        section=JOBS,
        doc=(
            "when the periodic task queues every unclassified post (cron; a 6th field means "
            "seconds; `off` disables)"
        ),
    )
    jobs_prune_cron: str = setting(
        default="30 3 * * *",
        env="VOLFEFE_JOBS_PRUNE_CRON",
        section=JOBS,
        doc=(
            "when the periodic task deletes finished jobs older than `VOLFEFE_JOBS_PRUNE_DAYS` "
            "(cron; `off` disables)"
        ),
    )
    jobs_rescue_cron: str = setting(
        default="* * * * *",
        env="VOLFEFE_JOBS_RESCUE_CRON",
        section=JOBS,
        doc=(
            "when the periodic task re-queues the jobs of workers that stopped beating (cron; "
            "`off` disables)"
        ),
    )
    jobs_prune_days: float = setting(
        default=7.0,
        env="VOLFEFE_JOBS_PRUNE_DAYS",
        section=JOBS,
        check=positive,
        doc="age in days of the finished jobs the daily prune deletes",
    )
    jobs_heartbeat: float = setting(
        default=10.0,
        env="VOLFEFE_JOBS_HEARTBEAT",
        section=JOBS,
        check=positive,
        doc="seconds between a job worker's heartbeats",
    )
    jobs_stalled_after: float = setting(
        default=30.0,
        env="VOLFEFE_JOBS_STALLED_AFTER",
        section=JOBS,
        check=positive,
        doc="seconds without a heartbeat before a job worker's jobs are rescued",
    )
    jobs_poll_interval: float = setting(
        default=1.0,
        env="VOLFEFE_JOBS_POLL_INTERVAL",
        section=JOBS,
        check=positive,
        doc=(
            "seconds between queue polls; a new job wakes the worker by NOTIFY, so this only "
            "bounds what a missed notification costs"
        ),
    )
    auto_enqueue: str | None = setting(
        default=None,
        env="VOLFEFE_AUTO_ENQUEUE",
        section=JOBS,
        check=switch,
        shown="unset (a new database starts `on`)",
        doc=(
            "`on` / `off`: whether a post written to `contents` by anyone is queued for "
            "classification; stored in the database by `db migrate` (and by the embedded server's"
            " automatic migration), since the trigger runs in other applications' transactions"
        ),
    )
    api_token: str | None = setting(
        default=None,
        env="VOLFEFE_API_TOKEN",
        section=HTTP,
        check=token,
        secret=True,
        shown="unset",
        doc=(
            "Bearer token of the HTTP write routes (16 characters or more); unset = `serve` "
            "listens on 127.0.0.1 only"
        ),
    )
    api_max_body: int = setting(
        default=1_048_576,
        env="VOLFEFE_API_MAX_BODY",
        section=HTTP,
        check=at_least(1),
        doc="bytes per HTTP request body (413 past it)",
    )
    api_max_items: int = setting(
        default=256,
        env="VOLFEFE_API_MAX_ITEMS",
        section=HTTP,
        check=at_least(1),
        doc="texts per `/api/v1/classify` call, posts per `/api/v1/posts` call",
    )
    api_max_text_chars: int = setting(
        default=100_000,
        env="VOLFEFE_API_MAX_TEXT_CHARS",
        section=HTTP,
        check=at_least(1),
        doc="characters per text or post over HTTP",
    )
    http_header_timeout: float = setting(
        default=10.0,
        env="VOLFEFE_HTTP_HEADER_TIMEOUT",
        section=HTTP,
        check=positive,
        doc=(
            "seconds a connection has to send a request's line and headers (from connect, or from"
            " the first byte of the next request on a kept-alive connection); closed past it"
        ),
    )
    http_keep_alive: int = setting(
        default=5,
        env="VOLFEFE_HTTP_KEEP_ALIVE",
        section=HTTP,
        check=at_least(1),
        doc="seconds an idle keep-alive HTTP connection is kept open",
    )
    http_max_header_bytes: int = setting(
        default=16_384,
        env="VOLFEFE_HTTP_MAX_HEADER_BYTES",
        section=HTTP,
        check=at_least(1024),
        doc="bytes of a request line and headers (400 past it)",
    )
    http_max_connections: int = setting(
        default=1_000,
        env="VOLFEFE_HTTP_MAX_CONNECTIONS",
        section=HTTP,
        check=at_least(1),
        doc=(
            "open connections, event streams included; more are answered 503 (uvicorn's plain text)"
        ),
    )
    login_max_failures: int = setting(
        default=5,
        env="VOLFEFE_LOGIN_MAX_FAILURES",
        section=HTTP,
        check=at_least(1),
        doc=(
            "failed `/login` tries per client address within `VOLFEFE_LOGIN_WINDOW`; past it "
            "`TooManyAttempts` (429)"
        ),
    )
    login_window: float = setting(
        default=300.0,
        env="VOLFEFE_LOGIN_WINDOW",
        section=HTTP,
        check=positive,
        doc="seconds over which `VOLFEFE_LOGIN_MAX_FAILURES` are counted",
    )
    login_session_max_age: float = setting(
        default=43_200.0,
        env="VOLFEFE_LOGIN_SESSION_MAX_AGE",
        section=HTTP,
        check=positive,
        doc="seconds a dashboard login (its signed session cookie) lasts",
    )
    jobs_max_rebuilds: int = setting(
        default=3,
        env="VOLFEFE_JOBS_MAX_REBUILDS",
        section=JOBS,
        check=at_least(1),
        doc="failed classifier rebuilds in a row after which `jobs worker` exits 3",
    )
    db_connect_timeout: float = setting(
        default=10.0,
        env="VOLFEFE_DB_CONNECT_TIMEOUT",
        section=DATABASE,
        check=positive,
        doc="seconds to open a database connection (libpq: whole seconds, at least 2)",
    )
    db_statement_timeout: float = setting(
        default=60.0,
        env="VOLFEFE_DB_STATEMENT_TIMEOUT",
        section=DATABASE,
        check=at_least(0, "0 = none"),
        doc=(
            "seconds a statement may run (server-side `statement_timeout`; client-side deadline 5"
            " s later); 0 = none"
        ),
    )
    db_keepalive: float = setting(
        default=10.0,
        env="VOLFEFE_DB_KEEPALIVE",
        section=DATABASE,
        check=positive,
        doc=(
            "seconds of silence before TCP keepalive probes (3, a third of that apart); "
            "unacknowledged data aborts after twice that, so a job worker cut off by a partition "
            "notices within `VOLFEFE_JOBS_HEARTBEAT` + 2 x this"
        ),
    )
    sink_poll_interval: float = setting(
        default=5.0,
        env="VOLFEFE_SINK_POLL_INTERVAL",
        section=SINKS,
        check=positive,
        doc=(
            "seconds between a delivery process's safety looks at each sink; a stored result "
            "wakes it by NOTIFY, so this only bounds what a missed notification costs"
        ),
    )
    sink_timeout: float = setting(
        default=10.0,
        env="VOLFEFE_SINK_TIMEOUT",
        section=SINKS,
        check=positive,
        doc="seconds a receiver has to take one message (an HTTP answer, a bus's ack)",
    )
    sink_backoff: float = setting(
        default=1.0,
        env="VOLFEFE_SINK_BACKOFF",
        section=SINKS,
        check=positive,
        doc=(
            "seconds before the first retry of a failed delivery; doubled per failure in a row "
            "up to `VOLFEFE_SINK_BACKOFF_MAX`, each wait drawn between half and all of it"
        ),
    )
    sink_backoff_max: float = setting(
        default=300.0,
        env="VOLFEFE_SINK_BACKOFF_MAX",
        section=SINKS,
        check=positive,
        doc="the longest wait before retrying a failing sink",
    )
    sink_unhealthy_after: int = setting(
        default=5,
        env="VOLFEFE_SINK_UNHEALTHY_AFTER",
        section=SINKS,
        check=at_least(1),
        doc=(
            "failed deliveries in a row after which a sink is shown unhealthy (`sinks list`, "
            "`volfefe_sink_healthy` 0 in /metrics); it is still retried"
        ),
    )

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            spec = item.metadata.get(SPEC)
            if spec is not None and spec.check is not None:
                problem = spec.check(getattr(self, item.name))
                if problem is not None:
                    raise _invalid(item.name, problem)
        # Checks between settings: each names the setting it blames.
        if self.jobs_stalled_after <= self.jobs_heartbeat:
            raise _invalid(
                "jobs_stalled_after",
                f"({self.jobs_stalled_after}) must exceed jobs_heartbeat "
                f"({self.jobs_heartbeat}), or live workers would look stalled",
            )
        if self.rebuild_backoff_max < self.rebuild_backoff:
            raise _invalid(
                "rebuild_backoff_max",
                f"({self.rebuild_backoff_max}) must be >= rebuild_backoff ({self.rebuild_backoff})",
            )
        if self.sink_backoff_max < self.sink_backoff:
            raise _invalid(
                "sink_backoff_max",
                f"({self.sink_backoff_max}) must be >= sink_backoff ({self.sink_backoff})",
            )
        if self.quantize in GUARDED_SCHEMES and self.device not in ("auto", "cpu"):
            raise _invalid(
                "quantize",
                f"{self.quantize} runs on the CPU only (OpenVINO), not on {self.device}",
            )
        if self.backend in ("onnx", "openvino") and self.device not in ("auto", "cpu"):
            raise _invalid(
                "device",
                f"{self.device} needs the torch backend: {self.backend} runs on the CPU only "
                "here (set VOLFEFE_BACKEND=torch or auto)",
            )
        if self.quantize in GUARDED_SCHEMES and self.backend in ("torch", "onnx"):
            raise _invalid(
                "quantize",
                f"{self.quantize} needs the openvino backend, not {self.backend} "
                "(set VOLFEFE_BACKEND=openvino or auto)",
            )
        if self.preempt == "layers" and (
            self.backend not in ("auto", "onnx") or self.quantize not in ("none", "int8")
        ):
            raise _invalid(
                "preempt",
                f"layers needs the onnx backend and quantize none or int8, not backend "
                f"{self.backend} with quantize {self.quantize} (or set VOLFEFE_PREEMPT=off)",
            )
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
        if self.preempt == "layers":  # only the onnx backend runs a layered export
            return "onnx" if installed(ONNX_MODULES) else "torch"
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
        env = _renamed(env)
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
        values.setdefault("export_cache", default_export_cache(env))
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


def _renamed(env: Mapping[str, str]) -> Mapping[str, str]:
    """`env` with each variable set under its old name (`Spec.old_env`) only, under its new
    name too; a FutureWarning says to rename it."""
    moved: dict[str, str] = {}
    for _, _, spec in declared():
        old = spec.old_env
        if old and env.get(old) and not env.get(spec.env):
            warnings.warn(f"{old} is now {spec.env}: rename it", FutureWarning, stacklevel=3)
            moved[spec.env] = env[old]
    return {**env, **moved} if moved else env


def _invalid(name: str, problem: str) -> ConfigError:
    """The error for field `name`: `workers must be >= 1, got 0`."""
    return ConfigError(f"{name} {problem}", setting=name)


_KIND: dict[Callable[[str], Any], str] = {
    int: "a whole number",
    float: "a number",
    str: "text",
    Path: "a path",
}


def declared() -> Iterator[tuple[str, type, Spec]]:
    """(field name, type, spec) of every setting with a variable, in declaration order."""
    hints = typing.get_type_hints(Settings)
    for item in dataclasses.fields(Settings):
        spec = item.metadata.get(SPEC)
        if spec is not None:
            yield item.name, _converter(hints[item.name]), spec


def shown_default(name: str) -> str:
    """The default of setting `name` as the reference shows it.

    >>> shown_default("call_timeout"), shown_default("revision"), shown_default("backend")
    ('30', 'main', '`auto`')
    """
    item = next(f for f in dataclasses.fields(Settings) if f.name == name)
    spec: Spec = item.metadata[SPEC]
    if spec.shown is not None:
        return spec.shown
    value = item.default
    if value is None:
        return "unset"
    if isinstance(value, str):
        return f"`{value}`"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _converter(hint: Any) -> type:
    """int, float, str or Path: how a variable's text becomes the field's value."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    kind = args[0] if args else hint
    if kind not in _KIND:
        raise TypeError(f"no converter for settings of type {kind!r}")
    return cast(type, kind)


def _env_vars() -> dict[str, tuple[str, Callable[[str], Any]]]:
    return {name: (spec.env, kind) for name, kind, spec in declared()}


_ENV_VARS = _env_vars()  # field -> (variable, converter), from the declarations
