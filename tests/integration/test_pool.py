"""The supervised pool with real children and the tiny model: faults, concurrency, shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TINY_LABELS
from tests.helpers import aeventually, alive, eventually
from volfefe import (
    CallTimeout,
    Classification,
    Classifier,
    ConfigError,
    NoTextError,
    PoisonText,
    PoolBroken,
    PoolClosed,
    ProtocolError,
    WorkerBootError,
    WorkerCrashed,
)

MakeClassifier = Callable[..., Classifier]


# The pool's tests run on the onnx backend (tests/conftest.py: its child boots without
# torch): the supervision does not depend on the backend. The tests of what a child answers
# run on both.
BOTH_BACKENDS = pytest.mark.parametrize("backend", ["torch", "onnx"])


def close_enough(a: Classification, b: Classification, tol: float = 1e-5) -> bool:
    return a.sentiment == b.sentiment and all(
        abs(a.raw_scores[k] - b.raw_scores[k]) <= tol for k in a.raw_scores
    )


@pytest.mark.parametrize("fault", ["crash@1", "hang@1", "garbage@1"])
def test_a_lone_text_whose_child_fails_once_is_retried_on_a_fresh_child(
    make_classifier: MakeClassifier, fault: str
) -> None:
    # The child may have been killed from outside: one failure does not make a text poison.
    clf = make_classifier(fault=fault, call_timeout=1.0)
    clf.start()
    first_pid = clf.pids()[0]
    assert clf.classify("rates cut").sentiment in TINY_LABELS
    assert clf.stats()["restarts"] == 1
    assert clf.pids() != [first_pid]
    assert not alive(first_pid)


@pytest.mark.parametrize(
    "fault, expected",
    [("crash@1", WorkerCrashed), ("hang@1", CallTimeout), ("garbage@1", ProtocolError)],
)
def test_children_that_fail_every_first_call_convict_no_text(
    make_classifier: MakeClassifier, fault: str, expected: type[Exception]
) -> None:
    # Every child fails its first call: the text fails alone twice, but so does the control,
    # so the fault is not the text's. Its failures are charged: the pool breaks.
    clf = make_classifier(fault=fault, once=False, call_timeout=1.0, max_restarts=2)
    with pytest.raises(expected) as info:
        clf.classify("rates cut")
    assert info.value.transient
    assert clf.stats()["restarts"] == 3  # the call, the text on a fresh child, the control
    eventually(lambda: clf.health().startswith(("PoolBroken: ", "starting")), timeout=30)


@pytest.mark.parametrize("fault", ["crash@3", "garbage@3", "hang@4"])
def test_a_fault_that_strikes_whatever_the_text_convicts_none(
    make_classifier: MakeClassifier, fault: str
) -> None:
    # Each child fails its N-th call, whatever it holds: lone texts and batches alike are
    # answered by a fresh child, and nothing is called poison.
    clf = make_classifier(fault=fault, once=False, call_timeout=1.0, max_restarts=100)
    results = [clf.classify(f"rates cut {i}") for i in range(7)]
    results += clf.classify_many([f"bonds {i}" for i in range(5)], return_exceptions=True)
    results += clf.classify_many([f"oil {i}" for i in range(5)], return_exceptions=True)
    assert all(isinstance(r, Classification) for r in results), results
    assert clf.stats()["restarts"] >= 2


def test_a_burst_of_poison_texts_never_breaks_the_pool(make_classifier: MakeClassifier) -> None:
    # Poison texts among innocent ones, a budget of one restart: each poison text explains
    # its own failures, so the pool never breaks and every innocent text is answered.
    clf = make_classifier(
        fault="poison=POISON", once=False, max_restarts=1, workers=2, request_timeout=240.0
    )
    texts = [f"POISON {i}" if i % 4 == 0 else f"stocks rally {i}" for i in range(16)]
    results = clf.classify_many(texts, return_exceptions=True)
    for text, result in zip(texts, results, strict=True):
        expected = PoisonText if "POISON" in text else Classification
        assert isinstance(result, expected), (text, result)
    assert clf.stats()["rebuilds"] == 0 and clf.health() == "ready"


@pytest.mark.parametrize("fault", ["crash@1", "hang@1", "garbage@1"])
def test_fault_in_a_batch_is_retried_alone_on_a_fresh_child(
    make_classifier: MakeClassifier, fault: str
) -> None:
    clf = make_classifier(fault=fault, call_timeout=1.0)
    results = clf.classify_many(["rates cut", "stocks rally"])
    assert all(r.sentiment in TINY_LABELS for r in results)
    assert clf.stats()["restarts"] == 1


def test_kill_9_of_a_child_mid_request_retries_that_text_at_once(
    make_classifier: MakeClassifier, tmp_path: Path
) -> None:
    # The OOM killer or an operator, not the text: the text is answered by a fresh child
    # long before the 120 s deadline, and is not called poison.
    clf = make_classifier(fault="hang@1", call_timeout=120.0)
    clf.start()
    pid = clf.pids()[0]
    killer = threading.Thread(
        target=lambda: (
            eventually(lambda: (tmp_path / "fault-fired").exists()),
            os.kill(pid, signal.SIGKILL),
        )
    )
    killer.start()
    started = time.monotonic()
    assert clf.classify("stocks").sentiment in TINY_LABELS
    assert time.monotonic() - started < 100  # not the call_timeout of the killed child
    killer.join()
    assert not alive(pid) and clf.pids() != [pid]
    assert clf.stats()["restarts"] == 1


def test_crash_report_carries_the_childs_stderr(
    make_classifier: MakeClassifier, caplog: pytest.LogCaptureFixture
) -> None:
    # Behaviour change: a child killed while idle is replaced before a call reaches it, so the
    # report (with the stderr tail) is the warning that says it was replaced.
    caplog.set_level(logging.WARNING, logger="volfefe")
    clf = make_classifier(fault="stdout-noise")  # prints a stray line to stderr at boot
    clf.start()
    os.kill(clf.pids()[0], signal.SIGKILL)
    eventually(lambda: any("died while idle" in r.getMessage() for r in caplog.records), 30)
    report = next(r.getMessage() for r in caplog.records if "died while idle" in r.getMessage())
    assert "stray print" in report and "SIGKILL" in report
    assert clf.classify("stocks").sentiment in TINY_LABELS


def test_poison_text_in_a_batch_fails_alone(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(fault="poison=POISON", once=False, max_restarts=5)
    texts = ["stocks rally", "oil falls", "POISON pill", "jobs report", "bonds"]
    results = clf.classify_many(texts, return_exceptions=True)
    assert isinstance(results[2], PoisonText) and isinstance(results[2].__cause__, WorkerCrashed)
    assert results[2].reason.startswith("crashed")
    assert [isinstance(r, Classification) for r in results] == [True, True, False, True, True]
    alone = clf.classify_many(["stocks rally", "oil falls"])
    assert close_enough(results[0], alone[0]) and close_enough(results[1], alone[1])


def test_boot_failure_is_a_config_error_without_a_crash_loop(
    make_classifier: MakeClassifier, caplog: pytest.LogCaptureFixture
) -> None:
    # Behaviour change: a child that exits with status 3 at boot is a ConfigError (exit code
    # 2), from start() and from every call, and the pool is never rebuilt.
    caplog.set_level(logging.INFO, logger="volfefe")
    clf = make_classifier(fault="boot-fail", once=False, workers=1, max_restarts=5)
    with pytest.raises(ConfigError) as info:
        clf.classify("stocks")
    cause = info.value.__cause__
    assert isinstance(cause, WorkerBootError) and cause.returncode == 3
    assert info.value.exit_code == 2
    assert "fault injected: boot-fail" in str(info.value)  # names the child's last stderr lines
    restarts = [r for r in caplog.records if "failed to boot" in r.getMessage()]
    assert restarts == []
    with pytest.raises(ConfigError):  # and later calls fail fast with the same error
        clf.classify("again")
    with pytest.raises(ConfigError):
        clf.start()
    assert clf.stats()["rebuilds"] == 0


def test_child_never_ready_is_a_timed_out_boot_error(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(fault="boot-hang", once=False, boot_timeout=1.0, max_restarts=1)
    with pytest.raises(PoolBroken) as info:
        clf.classify("stocks")
    cause = info.value.__cause__
    assert isinstance(cause, WorkerBootError) and cause.timed_out


def test_slow_start_within_the_deadline_is_fine(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(fault="slow-start=2", boot_timeout=30.0)
    assert clf.classify("stocks").sentiment in TINY_LABELS


def test_restart_budget_stops_a_crash_loop(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(
        fault="crash@1",
        once=False,
        max_restarts=2,
        restart_window=60.0,
        rebuild_backoff=600,
        rebuild_backoff_max=600,
    )
    # The call, the text on a fresh child and the control all fail: not the text's fault
    # (it gets the WorkerError), and three child faults spend a budget of two.
    with pytest.raises(WorkerCrashed):
        clf.classify("stocks")
    with pytest.raises(PoolBroken, match="stopped restarting") as info:
        clf.classify("stocks")
    assert isinstance(info.value.__cause__, WorkerCrashed)
    with pytest.raises(PoolBroken):  # fails fast until the rebuild
        clf.classify("stocks")
    assert clf.pids() == []


def test_eight_threads_fifty_calls_each_get_their_own_answers(
    make_classifier: MakeClassifier,
) -> None:
    clf = make_classifier(workers=2)
    words = [
        "stocks rally",
        "tariffs crash",
        "oil",
        "jobs strong",
        "fed cuts rates",
        "china deal",
        "bonds yield",
        "gold soars",
    ]
    expected = {w: clf.classify(w) for w in words}
    failures: list[str] = []

    def caller(n: int) -> None:
        for i in range(50):
            word = words[(n + i) % len(words)]
            got = clf.classify(word)
            if not close_enough(got, expected[word]):
                failures.append(f"{word}: {got} != {expected[word]}")

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(clf.pids()) == 2


async def test_asyncio_callers_are_served_concurrently(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(workers=2)
    texts = [f"stocks rally {i}" for i in range(40)]
    results = await asyncio.gather(*(clf.aclassify(t) for t in texts))
    batch = await clf.aclassify_many(texts)
    assert all(close_enough(a, b) for a, b in zip(results, batch, strict=True))
    await clf.aclose()


async def test_cancelled_call_kills_the_busy_child(
    make_classifier: MakeClassifier, tmp_path: Path
) -> None:
    clf = make_classifier(fault="hang@1", call_timeout=120.0)
    await asyncio.to_thread(clf.start)
    pid = clf.pids()[0]
    task = asyncio.create_task(clf.aclassify("stocks"))
    await aeventually(lambda: (tmp_path / "fault-fired").exists())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await aeventually(lambda: not alive(pid))
    assert (await clf.aclassify("stocks")).sentiment in TINY_LABELS
    await clf.aclose()


@pytest.mark.parametrize("text", ["", "   \n\t", "\x00"])
def test_empty_texts_raise_no_text_error_without_a_child(
    make_classifier: MakeClassifier, text: str
) -> None:
    clf = make_classifier()
    with pytest.raises(NoTextError):
        clf.classify(text)
    assert clf.pids() == []  # nothing was started for it


@BOTH_BACKENDS
def test_odd_inputs_are_classified(make_classifier: MakeClassifier, backend: str) -> None:
    clf = make_classifier(backend=backend)
    texts = [
        "🚀🚀🚀 $TSLA to the moon 📈",
        "Die Börse bricht ein",
        "市场大涨",
        "bad surrogate \ud800 here",
        "NUL\x00inside",
        "x" * 1_000_000,
        "'; DROP TABLE contents; --",
    ]
    results = clf.classify_many(texts)
    assert all(r.sentiment in TINY_LABELS for r in results)
    assert [r.truncated for r in results] == [False] * 5 + [True, False]


@BOTH_BACKENDS
def test_same_text_same_probabilities_whatever_the_batch(
    make_classifier: MakeClassifier, backend: str
) -> None:
    clf = make_classifier(batch_size=4, backend=backend)
    target = "the fed cuts rates and stocks rally"
    alone = clf.classify(target)
    long_neighbours = ["tariffs " * 200, "oil", target, "jobs report " * 50, "a", "b b b"]
    for result in clf.classify_many(long_neighbours)[2:3] + clf.classify_many([target] * 9):
        assert close_enough(result, alone)


def test_close_stops_every_child_and_refuses_later_calls(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(workers=2)
    clf.start()
    eventually(lambda: len(clf.pids()) == 2, timeout=60)
    pids = clf.pids()
    clf.close()
    assert not any(alive(pid) for pid in pids)
    with pytest.raises(PoolClosed):
        clf.classify("stocks")


def test_close_lets_the_call_in_flight_finish(
    make_classifier: MakeClassifier, tmp_path: Path
) -> None:
    clf = make_classifier(fault="slow-start=1", shutdown_grace=60.0)  # queues behind the boot
    results: list[object] = []
    caller = threading.Thread(target=lambda: results.append(clf.classify("stocks")))
    caller.start()
    eventually(lambda: clf._owner is not None)
    clf.close()
    caller.join()
    assert isinstance(results[0], Classification)


async def test_concurrent_callers_share_calls_and_get_their_own_results(
    make_classifier: MakeClassifier,
) -> None:
    clf = make_classifier(batch_wait=0.2)
    texts = [f"stocks rally {i} " + "tariffs " * (i % 7) * 20 for i in range(24)]
    alone = [await clf.aclassify(t) for t in texts]
    before = clf.stats()["calls"]
    together = await asyncio.gather(*(clf.aclassify(t) for t in texts))
    calls = clf.stats()["calls"] - before
    assert calls < len(texts)  # gathered into shared calls
    assert all(close_enough(a, b) for a, b in zip(alone, together, strict=True))
    await clf.aclose()


def test_a_bulk_of_long_texts_is_cut_into_calls_within_the_token_budget(
    make_classifier: MakeClassifier,
) -> None:
    # 64 long posts in one call could outlast call_timeout on a slow CPU and cost a child.
    clf = make_classifier(forward_tokens=1024)
    texts = [f"tariffs {i} " + "markets crash " * 150 for i in range(5)]  # 512 estimated each
    results = clf.classify_many(texts)
    assert clf.stats()["calls"] == 3  # 2 + 2 + 1 texts: never over 1024 estimated tokens
    assert clf.stats()["restarts"] == 0
    assert [r.sentiment in TINY_LABELS for r in results] == [True] * 5


def test_a_bulk_of_mixed_lengths_is_cut_by_length_and_answered_in_the_callers_order(
    make_classifier: MakeClassifier,
) -> None:
    clf = make_classifier(batch_tokens=1024)
    texts = [f"tariffs {i} " + "markets crash " * 150 if i % 2 else f"stocks {i}" for i in range(8)]
    alone = [clf.classify(t) for t in texts]
    before = clf.stats()["calls"]
    together = clf.classify_many(texts)
    # Shortest first: a run of the 4 short texts and one of 3 long ones (304 tokens each by
    # the model's tokenizer: 912 padded tokens) share a call (about 930 tokens in all; the
    # child gives each length its own pass), then the last long one; the answers come back
    # in the caller's order.
    assert [r.tokens for r in alone if r.tokens > 100] == [304] * 4
    assert clf.stats()["calls"] - before == 2
    assert [r.tokens for r in together] == [r.tokens for r in alone]
    assert all(close_enough(a, b) for a, b in zip(alone, together, strict=True))


@pytest.mark.parametrize(
    ("forward_tokens", "calls"),
    [
        # 28 characters but 28 tokens each: guessed from characters (about 9 tokens each),
        # all 8 would go in one call of 224 tokens, over the pass budget of 100; counted,
        # they go 3 + 3 + 2 texts: 84, 84 and 56 tokens.
        (100, 3),
        # The queue gathers at most 100 tokens from waiting requests, but a caller's own
        # texts are cut by the pass budget: the 8 texts (224 padded tokens) are one run, and
        # a run goes as one call whatever the queue's budget.
        (1024, 1),
    ],
)
def test_calls_are_composed_by_the_models_own_token_counts_and_the_pass_budget(
    make_classifier: MakeClassifier, forward_tokens: int, calls: int
) -> None:
    clf = make_classifier(forward_tokens=forward_tokens, batch_tokens=100)
    texts = [f"$AAPL +3.{i}% https://t.co/xyz" for i in range(8)]
    clf.classify("warm")
    before = clf.stats()["calls"]
    results = clf.classify_many(texts)
    assert [r.tokens for r in results] == [28] * 8
    assert clf.stats()["calls"] - before == calls


@BOTH_BACKENDS
def test_int8_is_recorded_in_model_version(make_classifier: MakeClassifier, backend: str) -> None:
    fp32 = make_classifier(backend=backend).classify("stocks rally")
    int8 = make_classifier(backend=backend, quantize="int8").classify("stocks rally")
    assert int8.model_version.endswith("int8") and int8.model_version != fp32.model_version
    assert int8.model_version.split("+")[0] == fp32.model_version.split("+")[0]
    assert int8.sentiment in TINY_LABELS
