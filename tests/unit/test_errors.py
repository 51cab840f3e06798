"""The error tree, the public names, and the restart budget."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys

import volfefe
from volfefe import errors
from volfefe.protocol import ItemError
from volfefe.supervisor.classifier import _to_result
from volfefe.supervisor.policy import RestartBudget


def test_public_names_match_all() -> None:
    assert sorted(volfefe.__all__) == dir(volfefe)
    for name in volfefe.__all__:  # each one loads from its module
        value = getattr(volfefe, name)
        assert inspect.isclass(value) or inspect.isfunction(value), name
        assert value.__doc__, f"{name} has no docstring"


def test_the_child_never_loads_the_supervisor() -> None:
    code = (
        "import sys, volfefe.child.main; "
        "print(sorted(m for m in sys.modules if m.startswith('volfefe')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(out.stdout))
    assert all(
        m == "volfefe" or m.startswith(("volfefe.child", "volfefe.protocol")) for m in loaded
    )


def test_every_exception_is_exported() -> None:
    classes = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, errors.VolfefeError)
    }
    assert classes <= set(volfefe.__all__)


def test_transient_and_permanent_are_told_apart_by_class() -> None:
    transient = [
        errors.WorkerBootError("x"),
        errors.CallTimeout(1.0, pid=1),
        errors.WorkerCrashed(pid=1, returncode=-9),
        errors.ProtocolError("x"),
        errors.DatabaseUnavailable("x"),
        errors.PoolClosed("x"),
        errors.PoolBroken("x"),  # the Classifier rebuilds its pool: a later try may succeed
        errors.Overloaded("x"),
        errors.RequestTimeout(1.0),
        errors.ForwardPassFailed("x"),
    ]
    permanent = [
        errors.NoTextError(),
        errors.ClassificationFailed("x"),
        errors.ContentNotFound(1),
        errors.AlreadyClassified(1),
        errors.PoisonText("x", reason="crashed"),
        errors.ConfigError("x"),
    ]
    assert all(e.transient for e in transient)
    assert not any(e.transient for e in permanent)


def test_child_error_kinds_map_to_classes() -> None:
    empty = _to_result(ItemError("EmptyText", "nothing"), "m")
    other = _to_result(ItemError("RuntimeError", "boom", "Traceback ...\nRuntimeError: boom"), "m")
    assert isinstance(empty, errors.NoTextError)
    assert isinstance(other, errors.ClassificationFailed)
    assert other.remote_type == "RuntimeError"
    assert "RuntimeError: boom" in str(other.__cause__)
    oom = _to_result(ItemError("ForwardPassFailed", "RuntimeError: CUDA out of memory"), "m")
    nan = _to_result(ItemError("BadScores", "non-finite scores"), "m")
    assert isinstance(oom, errors.ForwardPassFailed) and oom.transient
    assert isinstance(nan, errors.ClassificationFailed) and nan.remote_type == "BadScores"


def test_crash_message_names_the_signal_and_stderr() -> None:
    exc = errors.WorkerCrashed(pid=42, returncode=-9, stderr="last words")
    assert "SIGKILL" in str(exc) and "last words" in str(exc) and exc.returncode == -9


def test_restart_budget_counts_within_the_window() -> None:
    now = [0.0]
    budget = RestartBudget(2, 10.0, lambda: now[0])
    assert budget.record() and budget.record()
    assert not budget.record()  # third restart within 10 s
    now[0] = 25.0
    assert budget.record()  # the old ones left the window
