"""The exception tree of volfefe. Callers branch on classes, never on message text.

```
VolfefeError
├── ConfigError                  bad settings, raised at start-up; or children that can never
│                                start (a model that cannot load), also once they stop loading
├── ClassifierError
│   ├── NoTextError              empty or whitespace-only text (permanent)
│   ├── ClassificationFailed     the child answered with an error for this input (permanent)
│   ├── WorkerError              transient: the child misbehaved, a retry is sensible
│   │   ├── WorkerBootError      no ready line before boot_timeout, or exit during boot
│   │   ├── CallTimeout          call_timeout exceeded; the child was killed
│   │   ├── WorkerCrashed        EOF or exit during a call
│   │   ├── ProtocolError        undecodable line or wrong reply id from a child
│   │   └── ForwardPassFailed    the model's forward pass raised in the child (e.g. out of memory)
│   ├── PoisonText               this text alone kills, hangs or garbles a child (permanent)
│   ├── Overloaded               too many texts waiting; try again later (transient)
│   ├── RequestTimeout           no answer within request_timeout, queue wait included (transient)
│   ├── ModelUnavailable         the model's files cannot be downloaded (hub down, unknown id)
│   ├── PoolBroken               restart budget spent; the Classifier rebuilds (transient)
│   ├── AccuracyGuardFailed      a quantised export disagrees too much with fp32: not installed
│   └── PoolClosed               the classifier was used after close() (transient for a job)
└── StoreError                   database errors that gain meaning here
    ├── DatabaseUnavailable      cannot connect, or the connection dropped (transient)
    ├── SchemaOutdated           migrations are pending: run `volfefe db migrate`
    ├── ContentNotFound          no post with that id (permanent)
    ├── JobNotFound              no background job with that id (permanent)
    ├── SinkNotFound             no sink with that id (permanent)
    ├── AlreadyClassified        the post already has a classification (permanent)
    └── InvalidPost              an import row or ingested post cannot be stored (permanent)
        └── FieldTooLong         one of its fields is over the length volfefe stores
└── SinkError                    a sink (webhook, bus subject) cannot be used as asked
    ├── InvalidSink              its URL, subject, secret or filters are not valid (exit 2)
    └── DeliveryFailed           the receiver did not take a message (transient)
```

`VolfefeError.transient` says whether retrying the same input later may succeed; the job
queue retries only those. `exit_code` is what the CLI exits with when the error reaches it.
"""

from __future__ import annotations


class VolfefeError(Exception):
    """Base of every error volfefe raises on purpose.

    >>> isinstance(CallTimeout(30.0, pid=1), VolfefeError)
    True
    """

    transient: bool = False
    exit_code: int = 1


class ConfigError(VolfefeError):
    """A setting is invalid: raised when `Settings` is built, or by a Classifier whose
    children say they can never start with these settings (also when that begins after the
    start, say the model folder was broken under a running process).

    `setting` names the `Settings` field at fault when there is one, so the CLI can say which
    variable or option set it.

    >>> ConfigError("workers must be >= 1, got 0", setting="workers").setting
    'workers'
    """

    exit_code = 2

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class ClassifierError(VolfefeError):
    """Something went wrong while classifying a text."""


class NoTextError(ClassifierError):
    """The text is empty or whitespace only, so there is nothing to classify.

    >>> str(NoTextError())
    'no text to classify: the text is empty or whitespace only'
    """

    def __init__(self, message: str = "the text is empty or whitespace only") -> None:
        super().__init__(f"no text to classify: {message}")


class RemoteTraceback(Exception):
    """Carries a child's traceback text as the `__cause__` of a remote error."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


class ClassificationFailed(ClassifierError):
    """The child processed the request and reported an error for this input (permanent).

    `remote_type` is the exception name in the child; `remote_traceback` its traceback text.
    """

    def __init__(self, message: str, remote_type: str = "", remote_traceback: str = "") -> None:
        super().__init__(f"{remote_type}: {message}" if remote_type else message)
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback
        if remote_traceback:
            self.__cause__ = RemoteTraceback(remote_traceback)


class WorkerError(ClassifierError):
    """A child process misbehaved (transient: the same input may succeed on a fresh child)."""

    transient = True

    def __init__(self, message: str, *, pid: int | None = None, stderr: str = "") -> None:
        if stderr:
            message = f"{message}\n--- last lines of the child's stderr ---\n{stderr}"
        super().__init__(message)
        self.pid = pid
        self.stderr = stderr


class WorkerBootError(WorkerError):
    """A child did not become ready: it exited during boot, or said nothing within the deadline."""

    def __init__(
        self,
        message: str,
        *,
        pid: int | None = None,
        returncode: int | None = None,
        timed_out: bool = False,
        stderr: str = "",
    ) -> None:
        super().__init__(message, pid=pid, stderr=stderr)
        self.returncode = returncode
        self.timed_out = timed_out


class Bf16Unavailable(WorkerBootError):
    """A bf16 scheme (`bf16`, `int8-static-bf16`) was asked for on a CPU without bf16
    arithmetic: the export cannot be made here. With `VOLFEFE_BACKEND=auto` the scheme's f32
    counterpart runs instead (with a warning)."""


class CallTimeout(WorkerError):
    """A call took longer than `call_timeout` seconds; the child was killed and will be replaced."""

    def __init__(self, timeout: float, *, pid: int | None = None, stderr: str = "") -> None:
        super().__init__(
            f"the child (pid {pid}) gave no answer within {timeout:g} s and was killed",
            pid=pid,
            stderr=stderr,
        )
        self.timeout = timeout


class WorkerCrashed(WorkerError):
    """The child exited (or closed its stdout) while it was answering a call."""

    def __init__(
        self, *, pid: int | None, returncode: int | None, stderr: str = "", idle: bool = False
    ) -> None:
        how = describe_exit(returncode)
        when = "died while idle" if idle else "crashed during a call"
        super().__init__(f"the child (pid {pid}) {when}: {how}", pid=pid, stderr=stderr)
        self.returncode = returncode


class ProtocolError(WorkerError):
    """A child wrote a line that is not a valid reply (bad JSON, wrong id, wrong shape)."""

    def __init__(
        self, message: str, *, raw: bytes = b"", pid: int | None = None, stderr: str = ""
    ) -> None:
        shown = raw[:200].decode("utf-8", "replace")
        super().__init__(f"{message} (got {shown!r})" if raw else message, pid=pid, stderr=stderr)
        self.raw = raw[:200]


class ForwardPassFailed(WorkerError):
    """The child's forward pass raised (say, CUDA out of memory) for this text's pass.

    Transient: the child lives on, and the same text may pass in a smaller or later batch.
    `remote_type` is the exception's name in the child.
    """

    def __init__(self, message: str, remote_type: str = "", remote_traceback: str = "") -> None:
        super().__init__(f"the forward pass failed in the child: {message}")
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback
        if remote_traceback:
            self.__cause__ = RemoteTraceback(remote_traceback)


class PoisonText(ClassifierError):
    """This text, sent alone, killed, hung or garbled a child: never feed it to a child again
    by itself. Permanent; `.reason` says what the child did (the `WorkerError` is the cause).
    A stored post that gets this error is quarantined."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class Overloaded(ClassifierError):
    """The pool's request queue is full: the caller should come back later (transient)."""

    transient = True


class ModelUnavailable(ClassifierError):
    """The model's files cannot be had: the hub cannot be reached (and they are not cached),
    the repository or revision does not exist, or the download took too long (permanent for
    this run: fix the network or point VOLFEFE_MODEL at a local folder)."""

    exit_code = 3


class RequestTimeout(ClassifierError):
    """A text got no answer within `request_timeout` seconds, queue wait included (transient).

    >>> str(RequestTimeout(5.0))
    'no answer within the request deadline of 5 s (queue wait included)'
    """

    transient = True

    def __init__(self, timeout: float) -> None:
        super().__init__(
            f"no answer within the request deadline of {timeout:g} s (queue wait included)"
        )
        self.timeout = timeout


class PoolBroken(ClassifierError):
    """The pool gave up restarting children. The `Classifier` rebuilds it after a backoff;
    meanwhile every call fails fast with this error (transient: a later try may succeed)."""

    transient = True
    exit_code = 3


class AccuracyGuardFailed(ClassifierError):
    """A guarded export (static int8, bf16) was checked against fp32 on held-out posts and is
    worse than the thresholds allow, so it was not installed (permanent for this model and
    data).

    >>> str(AccuracyGuardFailed(0.9, 0.3, 50, min_agreement=0.97, max_dp=0.2)).split(":")[0]
    'the int8-static export was refused'
    """

    exit_code = 5

    def __init__(
        self,
        agreement: float,
        max_abs_dp: float,
        n: int,
        *,
        min_agreement: float,
        max_dp: float,
        scheme: str = "int8-static",
    ) -> None:
        advice = "calibrate on more of your posts, " if "static" in scheme else ""
        super().__init__(
            f"the {scheme} export was refused: on {n} held-out posts it agrees with fp32 on "
            f"{agreement:.3f} of the labels (at least {min_agreement:g} needed) and its largest "
            f"probability difference is {max_abs_dp:.4f} (at most {max_dp:g} allowed); "
            f"{advice}loosen VOLFEFE_GUARD_MIN_AGREEMENT / VOLFEFE_GUARD_MAX_DP, or use "
            "another quantisation"
        )
        self.agreement = agreement
        self.max_abs_dp = max_abs_dp
        self.n = n


class PoolClosed(ClassifierError):
    """The classifier was used after `close()`, or closed while the call waited.

    Transient: in a job worker it means the worker is shutting down, and the job belongs to
    a later attempt (on this worker after a restart, or on another one).
    """

    transient = True


class StoreError(VolfefeError):
    """A database operation failed in a way volfefe can explain."""


class DatabaseUnavailable(StoreError):
    """The database cannot be reached, or the connection dropped mid-operation (transient)."""

    transient = True
    exit_code = 4


class SchemaOutdated(StoreError):
    """The database schema is behind this version of volfefe."""

    exit_code = 4

    def __init__(self, pending: list[str]) -> None:
        super().__init__(
            f"the database schema is behind: {len(pending)} migration(s) pending "
            f"({', '.join(pending)}); run `python -m volfefe db migrate`"
        )
        self.pending = pending


class ContentNotFound(StoreError):
    """No post has this id (permanent)."""

    def __init__(self, content_id: int) -> None:
        super().__init__(f"content {content_id} not found")
        self.content_id = content_id


class JobNotFound(StoreError):
    """No background job has this id (permanent)."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class SinkNotFound(StoreError):
    """No sink has this id (permanent).

    >>> str(SinkNotFound(7))
    'sink 7 not found'
    """

    def __init__(self, sink_id: int) -> None:
        super().__init__(f"sink {sink_id} not found")
        self.sink_id = sink_id


class AlreadyClassified(StoreError):
    """The post already has a classification; use reclassify to replace it (permanent)."""

    def __init__(self, content_id: int) -> None:
        super().__init__(f"content {content_id} is already classified")
        self.content_id = content_id


class InvalidPost(StoreError):
    """A post given to the importer or the ingest route cannot be stored as it is: a field is
    missing, of the wrong type, or not valid (permanent). The row is reported and skipped; the
    other rows are stored.

    >>> str(InvalidPost("missing external_id"))
    'missing external_id'
    """


class FieldTooLong(InvalidPost):
    """A field of a post is longer than volfefe stores (`.field`, `.size`, `.limit`, `.unit`).

    >>> str(FieldTooLong("external_id", 3000, 2000, "bytes"))
    'external_id is 3,000 bytes long in UTF-8, over the limit of 2,000 bytes'
    """

    def __init__(self, field: str, size: int, limit: int, unit: str) -> None:
        encoding = " in UTF-8" if unit == "bytes" else ""
        super().__init__(
            f"{field} is {size:,} {unit} long{encoding}, over the limit of {limit:,} {unit}"
        )
        self.field = field
        self.size = size
        self.limit = limit
        self.unit = unit


class SinkError(VolfefeError):
    """A sink (a webhook, a bus subject) cannot be used as asked."""


class InvalidSink(SinkError):
    """A sink's definition is not valid: its URL, subject, secret or filters (permanent).

    >>> str(InvalidSink("--webhook must be an http:// or https:// URL, got 'ftp://x'"))
    "--webhook must be an http:// or https:// URL, got 'ftp://x'"
    """

    exit_code = 2


class DeliveryFailed(SinkError):
    """The receiver did not take a message: no answer, an error status, a bus that refused
    it (transient: deliveries are retried with backoff; `sinks test` reports it).

    >>> DeliveryFailed("HTTP 500").transient
    True
    """

    transient = True


def describe_exit(returncode: int | None) -> str:
    """Say in words how a process ended.

    >>> describe_exit(-9)
    'killed by signal 9 (SIGKILL)'
    """
    import signal

    if returncode is None:
        return "closed its stdout while still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown"
        return f"killed by signal {-returncode} ({name})"
    return f"exited with status {returncode}"


def raised_by_ctrl_c(exc: BaseException) -> bool:
    """Was `exc` raised while a KeyboardInterrupt was being handled? (psycopg, interrupted
    inside a database call, can raise an error of its own from its clean-up instead.)

    >>> try:
    ...     try:
    ...         raise KeyboardInterrupt
    ...     except KeyboardInterrupt:
    ...         raise OSError("clean-up failed")
    ... except OSError as exc:
    ...     raised_by_ctrl_c(exc)
    True
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__context__
    return False
