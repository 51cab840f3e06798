"""ClassifyRun (the engine of `volfefe classify`) against a real database and real children."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from tests.jobs.helpers import insert_posts
from volfefe.classify.run import ClassifyRun
from volfefe.cli.progress import QuietReporter
from volfefe.store.connect import connect
from volfefe.store.posts import unclassified
from volfefe.supervisor.classifier import Classifier


def test_a_run_sends_each_batch_as_one_call_cut_by_padded_tokens(
    make_classifier: Callable[..., Classifier],
    db_conn: psycopg.Connection[Any],
    database_url: str,
) -> None:
    # 28 tokens each by the model's tokenizer: with 4 texts a batch and 100 padded tokens a
    # call, the run cuts its 8 posts 3 + 3 + 2, as the pool cuts a caller's texts, so each
    # batch is one call. Cut by count alone (4 + 4), each batch would be cut again into
    # 3 + 1 by the pool: 4 calls, two of them a lone post.
    clf = make_classifier(batch_size=4, forward_tokens=100, batch_tokens=100, workers=1)
    insert_posts(db_conn, [f"$AAPL +3.{i}% https://t.co/xyz" for i in range(8)])
    clf.classify("warm")
    before = clf.stats()["calls"]
    run = ClassifyRun(
        clf,
        lambda: connect(database_url),
        QuietReporter(),
        batch_size=4,
        pass_tokens=100,
        in_flight=1,  # one batch at a time: the pool cannot merge the pieces of two
    )
    summary = run.run(unclassified(db_conn), {})
    assert (summary.succeeded, summary.failed) == (8, {})
    assert clf.stats()["calls"] - before == 3
    assert unclassified(db_conn) == []
