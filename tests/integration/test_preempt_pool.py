"""VOLFEFE_PREEMPT=layers end to end: a real pool sends a short text to a child busy with a
long one (an express call), and the child answers it between two layers.

The long call is made long by the fault switch's `delay` (every request sleeps before its
pass), so the short text surely reaches the child while the long one runs: the tests look at
the order in which answers come, never at times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.conftest import TINY_LABELS
from tests.helpers import aeventually
from volfefe import Classification, Classifier

MakeClassifier = Callable[..., Classifier]
LONG = "the fed raises rates again and markets fall " * 60  # over the model's 512 tokens
SHORT = "stocks rally"
MEDIUM = "the fed raises rates and stocks fall " * 12  # 146 tokens: the medium class
DELAY = "delay=1.5"


def close_enough(a: Classification, b: Classification, tol: float = 1e-5) -> bool:
    return a.sentiment == b.sentiment and all(
        abs(a.raw_scores[k] - b.raw_scores[k]) <= tol for k in a.raw_scores
    )


def preempting(make_classifier: MakeClassifier, fault: str, **kwargs: object) -> Classifier:
    return make_classifier(backend="auto", preempt="layers", fault=fault, **kwargs)


async def long_then_short(
    clf: Classifier, text: str = SHORT
) -> tuple[list[str], Classification, Classification]:
    """Send LONG, then `text` once the long call is on the only child; the order they end in
    (the latter named "short")."""
    await asyncio.to_thread(clf.start)
    order: list[str] = []
    long = asyncio.create_task(clf.aclassify(LONG))
    long.add_done_callback(lambda _: order.append("long"))
    await aeventually(lambda: clf.stats()["calls"] >= 1)  # in flight: its child sleeps first
    short = asyncio.create_task(clf.aclassify(text))
    short.add_done_callback(lambda _: order.append("short"))
    await asyncio.wait([long, short])
    return order, long.result(), short.result()


async def test_a_short_text_is_answered_before_the_long_call_it_came_after(
    make_classifier: MakeClassifier,
) -> None:
    clf = preempting(make_classifier, DELAY)
    order, long, short = await long_then_short(clf)
    assert order == ["short", "long"]
    assert clf.stats()["express"] == 1
    assert clf.stats()["restarts"] == 0
    await clf.aclose()
    plain = make_classifier(backend="onnx")
    expected = await plain.aclassify_many([LONG, SHORT])
    assert close_enough(long, expected[0]) and close_enough(short, expected[1])
    await plain.aclose()


async def test_a_medium_text_goes_express_behind_a_long_one_but_not_behind_a_medium_one(
    make_classifier: MakeClassifier,
) -> None:
    clf = preempting(make_classifier, DELAY)
    order, _, medium = await long_then_short(clf, MEDIUM)
    assert order == ["short", "long"] and medium.tokens == 146
    assert clf.stats()["express"] == 1
    # Behind a medium call, a medium text waits for its turn: only short ones go express.
    order, _, _ = await asyncio.wait_for(medium_then_medium(clf), timeout=120)
    assert order == ["first", "second"]
    assert clf.stats()["express"] == 1
    await clf.aclose()


async def medium_then_medium(
    clf: Classifier,
) -> tuple[list[str], Classification, Classification]:
    """Send MEDIUM, then another medium text once the first call is on the child."""
    order: list[str] = []
    calls = clf.stats()["calls"]
    first = asyncio.create_task(clf.aclassify(MEDIUM))
    first.add_done_callback(lambda _: order.append("first"))
    await aeventually(lambda: clf.stats()["calls"] > calls)
    second = asyncio.create_task(clf.aclassify(MEDIUM + " again"))
    second.add_done_callback(lambda _: order.append("second"))
    await asyncio.wait([first, second])
    return order, first.result(), second.result()


@pytest.mark.parametrize("fault", ["crash@2", "hang@2", "garbage@2"])
async def test_a_child_failing_in_the_express_call_fails_both_calls_and_both_are_retried(
    make_classifier: MakeClassifier, fault: str
) -> None:
    # The child fails in the short text (its 2nd request) while the long one is paused: both
    # calls fail with it, both texts go on trial and are answered by fresh children, and the
    # one dead child is charged once (a second charge would break a pool of max_restarts=1).
    clf = preempting(make_classifier, f"{DELAY},{fault}", call_timeout=5.0, max_restarts=1)
    order, long, short = await long_then_short(clf)
    assert set(order) == {"long", "short"}
    assert long.sentiment in TINY_LABELS and short.sentiment in TINY_LABELS
    stats = clf.stats()
    assert stats["express"] == 1
    assert stats["restarts"] == 1 and stats["rebuilds"] == 0
    assert clf.health() == "ready"
    await clf.aclose()


@pytest.mark.parametrize("fault", ["crash@1", "garbage@1"])
def test_a_faulty_batch_is_retried_alone_with_preemption_on(
    make_classifier: MakeClassifier, fault: str
) -> None:
    # The pool's fault handling (test_pool.py) holds for a multiplexed port too.
    clf = make_classifier(backend="auto", preempt="layers", fault=fault, call_timeout=2.0)
    results = clf.classify_many(["rates cut", "stocks rally"])
    assert all(r.sentiment in TINY_LABELS for r in results)
    assert clf.stats()["restarts"] == 1


async def test_short_texts_go_to_the_busy_child_as_they_arrive(
    make_classifier: MakeClassifier,
) -> None:
    # A second short text does not wait for the first one's express call to end: both are in
    # flight beside the long call (each sleeps DELAY in the child before its pass).
    clf = preempting(make_classifier, DELAY)
    await asyncio.to_thread(clf.start)
    long = asyncio.create_task(clf.aclassify(LONG))
    await aeventually(lambda: clf.stats()["calls"] >= 1)
    first = asyncio.create_task(clf.aclassify(SHORT))
    await aeventually(lambda: clf.stats()["express"] >= 1)
    second = asyncio.create_task(clf.aclassify("rates cut"))
    await aeventually(lambda: clf.stats()["express"] >= 2)
    assert not first.done()
    done, _ = await asyncio.wait([long, first, second])
    assert all(task.result().sentiment in TINY_LABELS for task in done)
    assert clf.stats()["restarts"] == 0
    await clf.aclose()


async def test_a_long_call_given_up_burns_its_child_and_the_express_call_goes_again(
    make_classifier: MakeClassifier,
) -> None:
    # The long call's caller gives up while the short text is in flight beside it: the child
    # is burnt (not its fault: no restart is charged), the short text is sent again.
    clf = preempting(make_classifier, DELAY)
    await asyncio.to_thread(clf.start)
    pid = clf.pids()[0]
    long = asyncio.create_task(clf.aclassify(LONG))
    await aeventually(lambda: clf.stats()["calls"] >= 1)
    short = asyncio.create_task(clf.aclassify(SHORT))
    await aeventually(lambda: clf.stats()["express"] >= 1)
    long.cancel()
    assert (await short).sentiment in TINY_LABELS
    with pytest.raises(asyncio.CancelledError):
        await long
    assert pid not in clf.pids()
    assert clf.stats()["restarts"] == 0
    assert clf.stats()["calls"] == 3  # the long call, the express call, the short text again
    await clf.aclose()
