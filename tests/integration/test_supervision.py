"""The supervision tree, fault by fault, on real children with the tiny model (onnx backend).

Each test is named after the fault it injects; the pool's guarantees are that every accepted
request ends with an answer or a typed error in bounded time, and that only child faults
spend the restart budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TINY_LABELS
from tests.helpers import aeventually, alive, eventually
from volfefe import (
    Classification,
    ClassificationFailed,
    Classifier,
    ConfigError,
    ForwardPassFailed,
    Overloaded,
    PoisonText,
    PoolBroken,
    PoolClosed,
    RequestTimeout,
    WorkerCrashed,
)

MakeClassifier = Callable[..., Classifier]


def run_in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Start `call` in a thread; the list gets its result or the exception it raised."""
    out: list[object] = []

    def target() -> None:
        try:
            out.append(call())
        except Exception as exc:  # the test inspects it
            out.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def test_close_past_the_grace_fails_a_waiting_thread(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(fault="delay=60", call_timeout=120, shutdown_grace=0.5)
    clf.start()
    pid = clf.pids()[0]
    thread, out = run_in_thread(lambda: clf.classify_many(["stocks", "bonds"]))
    eventually(lambda: clf.stats()["calls"] == 1)  # in flight: the child sleeps 60 s
    clf.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert isinstance(out[0], PoolClosed)
    assert not alive(pid)


def test_unexpected_exception_in_a_slot_fails_every_request_at_once(
    make_classifier: MakeClassifier, tmp_path: Path
) -> None:
    # A real non-WorkerError in a slot: the child executable vanishes (say, an upgrade in
    # progress), so booting a replacement raises FileNotFoundError. The other slot's call in
    # flight must fail at once with PoolBroken, not after its child's 60 s.
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    python.chmod(0o755)
    clf = make_classifier(
        fault="delay=60",
        call_timeout=120,
        workers=2,
        worker_cmd=(str(python), "-m", "volfefe.child"),
        rebuild_backoff=600,
        rebuild_backoff_max=600,
    )
    clf.start()
    eventually(lambda: len(clf.pids()) == 2, timeout=60)
    a, out_a = run_in_thread(lambda: clf.classify_many(["stocks", "bonds"]))
    eventually(lambda: clf.stats()["calls"] == 1)
    b, out_b = run_in_thread(lambda: clf.classify_many(["oil", "gold"]))
    eventually(lambda: clf.stats()["calls"] == 2)  # both children busy for 60 s
    python.unlink()
    os.kill(clf.pids()[0], signal.SIGKILL)
    a.join(timeout=15)
    b.join(timeout=15)
    assert not a.is_alive() and not b.is_alive()
    for out in (out_a, out_b):
        assert isinstance(out[0], PoolBroken)
        assert isinstance(out[0].__cause__, FileNotFoundError)


def test_child_that_ignores_sigterm_is_killed_at_close(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(fault="ignore-term", shutdown_grace=0.5)
    clf.start()
    pid = clf.pids()[0]
    started = time.monotonic()
    clf.close()  # stdin closed: ignored; SIGTERM: ignored; SIGKILL 2 s later
    assert not alive(pid)
    assert time.monotonic() - started < 20  # bounded (2 s + 2 s + 2 s), never forever


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_nan_scores_are_a_per_item_error_and_the_child_lives(
    make_classifier: MakeClassifier, backend: str
) -> None:
    clf = make_classifier(fault="nan@1", backend=backend)
    clf.start()
    pid = clf.pids()[0]
    results = clf.classify_many(["stocks", "bonds"], return_exceptions=True)
    for result in results:
        assert isinstance(result, ClassificationFailed) and result.remote_type == "BadScores"
        assert not result.transient
    assert clf.pids() == [pid]  # no protocol error, no restart
    assert clf.classify("stocks").sentiment in TINY_LABELS
    assert clf.stats()["restarts"] == 0


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_failed_forward_pass_is_transient_and_the_child_lives(
    make_classifier: MakeClassifier, backend: str
) -> None:
    clf = make_classifier(fault="oom@1", backend=backend)
    clf.start()
    pid = clf.pids()[0]
    with pytest.raises(ForwardPassFailed, match="out of memory") as info:
        clf.classify("stocks")
    assert info.value.transient and info.value.remote_type == "ForwardPassFailed"
    assert clf.classify("stocks").sentiment in TINY_LABELS
    assert clf.pids() == [pid]


def test_child_that_dies_while_idle_is_replaced_before_a_batch(
    make_classifier: MakeClassifier,
) -> None:
    clf = make_classifier()
    clf.start()
    pid = clf.pids()[0]
    os.kill(pid, signal.SIGKILL)
    eventually(lambda: clf.pids() not in ([], [pid]), timeout=60)  # no call needed
    assert clf.classify("stocks").sentiment in TINY_LABELS
    assert clf.stats()["restarts"] == 1  # a child fault: counted


def test_overload_fails_fast_with_overloaded(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(fault="delay=60", call_timeout=120, batch_size=4, max_queued=8)
    clf.start()
    in_flight = clf.submit_many(["a", "b", "c", "d"])
    eventually(lambda: clf.stats()["calls"] == 1)
    queued = clf.submit_many([f"q{i}" for i in range(8)])  # fills the queue to the bound
    started = time.monotonic()
    with pytest.raises(Overloaded, match="max_queued=8") as info:
        clf.classify("one more")
    assert info.value.transient and time.monotonic() - started < 5
    clf.close()
    assert isinstance(in_flight.exception(timeout=10), PoolClosed)
    assert isinstance(queued.exception(timeout=10), PoolClosed)


def test_request_deadline_covers_the_queue_and_the_call(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(fault="delay=60", call_timeout=120, request_timeout=1.0, max_restarts=0)
    clf.start()
    pid = clf.pids()[0]
    in_flight = clf.submit_many(["stocks"])
    eventually(lambda: clf.stats()["calls"] == 1)
    started = time.monotonic()
    with pytest.raises(RequestTimeout):  # waits in the queue behind the busy child
        clf.classify("queued")
    assert time.monotonic() - started < 10
    assert isinstance(in_flight.result(timeout=10)[0], RequestTimeout)
    # Nobody waits for the busy child's answer any more: it is burnt and replaced, and that
    # is not its fault, so even a budget of zero restarts is not spent.
    eventually(lambda: not alive(pid))
    eventually(lambda: clf.pids() not in ([], [pid]), timeout=60)
    assert clf.stats()["restarts"] == 0


async def test_cancellation_does_not_count_against_the_budget(
    make_classifier: MakeClassifier, tmp_path: Path
) -> None:
    clf = make_classifier(fault="hang@1", call_timeout=120.0, max_restarts=0)
    await asyncio.to_thread(clf.start)
    pid = clf.pids()[0]
    task = asyncio.create_task(clf.aclassify("stocks"))
    await aeventually(lambda: (tmp_path / "fault-fired").exists())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await aeventually(lambda: not alive(pid))
    assert (await clf.aclassify("stocks")).sentiment in TINY_LABELS  # the pool is not broken
    assert clf.stats()["restarts"] == 0
    await clf.aclose()


@pytest.mark.skipif(
    Path("/proc/driver/nvidia").exists(), reason="a machine with CUDA can run on cuda"
)
def test_device_cuda_without_cuda_is_a_config_error(
    make_classifier: MakeClassifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="volfefe")
    clf = make_classifier(device="cuda", max_restarts=5, backend="torch")
    with pytest.raises(ConfigError, match="device 'cuda' is not available") as info:
        clf.start()
    assert info.value.exit_code == 2
    assert not [r for r in caplog.records if "failed to boot" in r.getMessage()]


def test_model_folder_that_can_never_load_is_a_config_error(
    make_classifier: MakeClassifier, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    clf = make_classifier(model=str(broken))
    with pytest.raises(ConfigError, match="cannot load model"):
        clf.start()
    with pytest.raises(ConfigError):
        clf.classify("stocks")
    assert clf.health().startswith("ConfigError: ")


def test_poison_text_alone_is_poison_text(make_classifier: MakeClassifier) -> None:
    # It fails alone twice, the second time as a fresh child's first call, and the control
    # passes on a fresh child: poison. It explains both failures, so a budget of zero holds.
    clf = make_classifier(fault="poison=POISON", once=False, max_restarts=0)
    with pytest.raises(PoisonText) as info:
        clf.classify("POISON pill")
    assert not info.value.transient
    assert info.value.reason.startswith("crashed the child: killed by signal 9")
    assert isinstance(info.value.__cause__, WorkerCrashed)
    assert clf.stats()["restarts"] == 2  # the call, then the text on a fresh child
    assert clf.classify("stocks rally").sentiment in TINY_LABELS
    assert clf.health() == "ready" and clf.stats()["rebuilds"] == 0


def test_poison_text_in_a_batch_fails_alone_and_the_rest_is_classified(
    make_classifier: MakeClassifier,
) -> None:
    clf = make_classifier(fault="poison=POISON", once=False)
    results = clf.classify_many(["stocks", "POISON pill", "bonds"], return_exceptions=True)
    assert isinstance(results[1], PoisonText)
    assert isinstance(results[0], Classification) and isinstance(results[2], Classification)
    assert clf.stats()["restarts"] == 3  # the batch's child, the text alone, on a fresh child


@pytest.mark.parametrize("limit", [{"max_child_calls": 2}, {"max_child_rss_mb": 1}])
def test_recycling_replaces_a_child_without_spending_the_budget(
    make_classifier: MakeClassifier, limit: dict[str, int]
) -> None:
    clf = make_classifier(max_restarts=0, **limit)
    clf.start()
    first = clf.pids()[0]
    for _ in range(2):
        assert clf.classify("stocks").sentiment in TINY_LABELS
    eventually(lambda: not alive(first))  # retired gracefully
    assert clf.classify("stocks").sentiment in TINY_LABELS
    assert clf.pids() != [first]
    assert clf.stats()["recycled"] >= 1 and clf.stats()["restarts"] == 0


def test_stderr_flood_does_not_break_the_stderr_reader(
    make_classifier: MakeClassifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="volfefe.supervisor.port")
    clf = make_classifier(fault="stderr-flood=80")  # one 80 MB line, past asyncio's limit
    assert clf.classify("stocks").sentiment in TINY_LABELS
    lines = [r.getMessage() for r in caplog.records if r.name == "volfefe.supervisor.port"]
    assert any("[+" in line and "bytes]" in line for line in lines)  # cut, and says so
    assert max(len(line) for line in lines) < 10_000
    assert any("stderr-flood done" in line for line in lines)


def test_huge_text_is_cut_before_it_crosses_the_pipe(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(max_chars=1000)
    clf.start()
    pid = clf.pids()[0]

    def bytes_read() -> int:
        io = Path(f"/proc/{pid}/io").read_text()
        return int(next(x for x in io.splitlines() if x.startswith("rchar:")).split()[1])

    before = bytes_read()
    result = clf.classify("stocks " * 5_000_000)  # 35 MB
    assert result.truncated
    assert bytes_read() - before < 1_000_000


def test_children_get_a_minimal_environment(
    make_classifier: MakeClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:secret@db/prod")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("PGPASSWORD", "secret")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    clf = make_classifier(worker_env={"HF_HUB_OFFLINE": "1", "EXTRA_FOR_CHILD": "yes"})
    clf.start()
    raw = Path(f"/proc/{clf.pids()[0]}/environ").read_bytes()
    env = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    assert "DATABASE_URL" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert "PGPASSWORD" not in env
    assert "secret" not in raw.decode()
    assert env["PATH"] and env["OMP_NUM_THREADS"] == "1" and env["HF_HUB_OFFLINE"] == "1"
    assert env["EXTRA_FOR_CHILD"] == "yes"
    assert not [name for name in env if name.startswith("VOLFEFE_") and "FAULT" not in name]


def test_broken_pool_is_rebuilt_after_the_backoff(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(fault="crash@1", max_restarts=0, rebuild_backoff=0.5)
    assert clf.health() == "starting"  # not started: health() does not start it
    clf.start()
    assert clf.health() == "ready"
    # The crash spends a budget of zero once the text passes on a fresh child (so the fault
    # was not the text's): the caller has its answer, then the pool breaks.
    assert clf.classify("stocks").sentiment in TINY_LABELS
    eventually(lambda: clf.stats()["rebuilds"] == 1 and clf.pids(), timeout=60)
    assert clf.classify("stocks").sentiment in TINY_LABELS
    assert clf.health() == "ready"
    assert clf.consecutive_rebuild_failures == 0
    assert clf.stats()["calls"] == 3  # the broken pool's calls still count: totals never go back


def test_rebuilds_that_never_get_ready_are_counted(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(
        fault="boot-hang",
        once=False,
        boot_timeout=0.5,
        max_restarts=0,
        rebuild_backoff=0.1,
        rebuild_backoff_max=0.2,
    )
    with pytest.raises(PoolBroken):
        clf.start()
    eventually(lambda: clf.consecutive_rebuild_failures >= 2, timeout=30)
    with pytest.raises(PoolBroken):
        clf.classify("stocks")


def test_close_while_the_child_boots_waits_neither_for_the_boot_nor_the_grace(
    make_classifier: MakeClassifier,
) -> None:
    clf = make_classifier(fault="boot-hang", once=False, boot_timeout=120.0, shutdown_grace=60.0)
    starting, out = run_in_thread(clf.start)
    eventually(lambda: clf.pids() != [], timeout=30)  # spawned, never ready
    [pid] = clf.pids()
    started = time.monotonic()
    clf.close()
    assert time.monotonic() - started < 20
    starting.join(timeout=10)
    assert not starting.is_alive(), "start() was left waiting"
    assert isinstance(out[0], PoolClosed)
    eventually(lambda: not alive(pid), timeout=10)


def test_child_frozen_while_idle_is_replaced_before_a_batch(
    make_classifier: MakeClassifier,
) -> None:
    """A SIGSTOPped idle child is alive, so only a ping tells: it fails the ping and is
    replaced with no call made, instead of costing the next call its call_timeout."""
    clf = make_classifier(idle_ping=0.5)
    clf.start()
    pid = clf.pids()[0]
    os.kill(pid, signal.SIGSTOP)
    try:
        eventually(lambda: clf.pids() not in ([], [pid]), timeout=60)  # no call needed
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed by the pool, unless it failed
            os.kill(pid, signal.SIGCONT)
    assert clf.classify("stocks").sentiment in TINY_LABELS
    assert clf.stats()["restarts"] == 1  # a child fault: counted
    assert clf.stats()["calls"] == 1  # pings are not calls
