"""The supervisor's pure rules: poison reasons, backoffs, the child's environment, stderr lines
(their modules' doctests run in test_doctests.py)."""

from __future__ import annotations

import pytest

from volfefe import errors
from volfefe.child import faults
from volfefe.supervisor.child_env import child_environment
from volfefe.supervisor.policy import is_impossible_boot, poison_from, rebuild_backoff
from volfefe.supervisor.port import StderrLines


@pytest.mark.parametrize(
    "cause, reason",
    [
        (errors.WorkerCrashed(pid=1, returncode=-9), "crashed the child: killed by signal 9"),
        (errors.CallTimeout(3.0, pid=1), "hung: no answer within 3 s"),
        (errors.ProtocolError("bad"), "garbled: the child's reply was not valid"),
    ],
)
def test_poison_names_what_the_child_did(cause: errors.WorkerError, reason: str) -> None:
    poison = poison_from(cause)
    assert poison.reason.startswith(reason) and poison.__cause__ is cause
    assert not poison.transient and reason in str(poison)


def test_rebuild_backoff_doubles_up_to_the_cap() -> None:
    assert [rebuild_backoff(n, 0.5, 3.0) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert rebuild_backoff(10_000, 1.0, 60.0) == 60.0


def test_only_exit_status_3_at_boot_is_impossible() -> None:
    assert is_impossible_boot(errors.WorkerBootError("x", returncode=3))
    assert not is_impossible_boot(errors.WorkerBootError("x", returncode=1))
    assert not is_impossible_boot(errors.WorkerBootError("x", timed_out=True))
    assert not is_impossible_boot(OSError("x"))


def test_child_environment_keeps_only_what_a_child_needs() -> None:
    parent = {
        "PATH": "/bin",
        "HOME": "/root",
        "LC_ALL": "C.UTF-8",
        "HF_HOME": "/cache",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "2",
        "VOLFEFE_WORKER_FAULT": "crash@1",
        "DATABASE_URL": "postgresql://u:pw@h/db",
        "PGPASSWORD": "pw",
        "AWS_SECRET_ACCESS_KEY": "k",
        "VOLFEFE_JOBS_CONCURRENCY": "5",
    }
    env = child_environment(parent, {"EXTRA": "1"})
    assert sorted(env) == [
        "EXTRA",
        "HF_HOME",
        "HOME",
        "LC_ALL",
        "OMP_NUM_THREADS",
        "PATH",
        "TRANSFORMERS_OFFLINE",
        "VOLFEFE_WORKER_FAULT",
    ]


def test_stderr_lines_are_bounded_whatever_the_chunking() -> None:
    lines = StderrLines(8)
    out = lines.feed(b"x" * 5) + lines.feed(b"y" * 100_000) + lines.feed(b"\nshort\n")
    assert out == ["xxxxxyyy [+99997 bytes]", "short"]
    assert lines.flush() == ""


def test_fault_modes_are_documented() -> None:
    doc = faults.Fault.__doc__ or ""
    for mode in ("stderr-flood=MB", "ignore-term", "nan@N", "oom@N"):
        assert mode in doc
