"""The scheduling rules with real children and the tiny model: which post is answered first
(the order of completion, never a time)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import aeventually
from volfefe import Classifier

MakeClassifier = Callable[..., Classifier]
LONG = "tariffs " * 100  # about 100 tokens: not a short post (VOLFEFE_SHORT_TOKENS=64)
SHORT = "stocks rally"


def queued(clf: Classifier) -> int:
    """Texts waiting for a child in the classifier's pool."""
    pool = clf._owner.current if clf._owner is not None else None
    return pool.queued if pool is not None else 0


@pytest.mark.parametrize(
    "settings, first",
    [
        ({"schedule": "oldest", "batch_tokens": 64}, "long"),  # a call of one post each
        ({"schedule": "shortest", "schedule_aging": 60.0}, "short"),  # not aged in a second
        ({"schedule": "shortest", "schedule_aging": 0.1}, "long"),  # waited past the bound
        ({"short_reserve": 1, "workers": 2, "schedule_aging": 60.0}, "short"),
    ],
    ids=["oldest", "shortest", "shortest-aged", "reserve"],
)
async def test_the_schedule_decides_whether_a_short_post_overtakes_a_long_one(
    make_classifier: MakeClassifier, settings: dict[str, Any], first: str
) -> None:
    # Every reply takes a second: the posts queue while a call of its own holds a child.
    clf = make_classifier(fault="delay=1", **settings)
    await asyncio.to_thread(clf.start)
    blocker = asyncio.create_task(clf.aclassify("the call in flight"))
    await aeventually(lambda: clf.stats()["calls"] == 1)
    answered: list[str] = []
    long = asyncio.create_task(clf.aclassify(LONG))
    long.add_done_callback(lambda _: answered.append("long"))
    # Queued, not taken: by the busy child's slot, or, with a child kept for short posts, by
    # the idle one (or a second child still booting).
    await aeventually(lambda: queued(clf) == 1)
    short = asyncio.create_task(clf.aclassify(SHORT))
    short.add_done_callback(lambda _: answered.append("short"))
    await asyncio.wait_for(asyncio.gather(blocker, long, short), 60)
    assert long.result().tokens > 64 >= short.result().tokens
    assert answered[0] == first
