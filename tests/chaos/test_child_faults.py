"""The child faults the harness relies on, with real children and the tiny model: combined
modes, and `garbage-on-usr1` (a child garbles its next reply after a SIGUSR1)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from tests.conftest import TINY_LABELS
from tests.helpers import alive, eventually
from volfefe import Classification, Classifier, PoisonText, WorkerError
from volfefe.chaos.procs import catches

MakeClassifier = Callable[..., Classifier]


def test_sigusr1_garbles_the_next_reply_and_the_batch_is_answered_by_a_new_child(
    make_classifier: MakeClassifier,
) -> None:
    clf = make_classifier(fault="garbage-on-usr1", once=False)
    assert clf.classify("rates cut").sentiment in TINY_LABELS  # no signal, no fault
    pid = clf.pids()[0]
    assert catches(pid, signal.SIGUSR1)
    os.kill(pid, signal.SIGUSR1)
    results = clf.classify_many(["rates cut", "stocks soar"], return_exceptions=True)
    # The garbled batch is retried text by text on a fresh child, so nothing is lost.
    assert all(isinstance(r, Classification) for r in results), results
    assert clf.stats()["restarts"] >= 1
    assert clf.pids() != [pid] and not alive(pid)


def test_poison_and_garbage_modes_combine(make_classifier: MakeClassifier) -> None:
    clf = make_classifier(fault="poison=chaospoison,garbage-on-usr1", once=False)
    good, bad = clf.classify_many(["stocks rally", "chaospoison stocks"], return_exceptions=True)
    assert isinstance(good, Classification)
    # Today a WorkerCrashed; with the poison contract a PoisonText raised from it.
    assert isinstance(bad, WorkerError | PoisonText), bad
    pid = eventually(
        lambda: clf.pids() and catches(clf.pids()[0], signal.SIGUSR1) and clf.pids()[0]
    )
    os.kill(pid, signal.SIGUSR1)
    assert isinstance(clf.classify_many(["a", "b"], return_exceptions=True)[0], Classification)
    assert clf.stats()["restarts"] >= 3  # poison batch, poison alone, garbled batch
