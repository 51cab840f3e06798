"""The quarantine records in the store: who sets them, who skips them, who lifts them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from tests.store.helpers import ids, load, post, result
from volfefe.classify.intelligence import classifiable, store_results
from volfefe.errors import PoisonText
from volfefe.jobs.queue import unclassified_ids
from volfefe.store.posts import get_content, save_classification, stats, unclassified
from volfefe.store.quarantine import quarantine, quarantined

Conn = psycopg.Connection[Any]
REASON = "the child (pid 7) crashed during a call: killed by signal 9 (SIGKILL)"


def test_poison_text_result_quarantines_its_post_with_reason_and_time(
    db_conn: Conn, tmp_path: Path
) -> None:
    load(db_conn, tmp_path, [post("1", "bad words"), post("2", "good words")])
    bad, good = ids(db_conn)["1"], ids(db_conn)["2"]
    poison = PoisonText("sent alone, it killed a child", reason=REASON + "\n--- stderr ---\nboom")

    outcomes = store_results(db_conn, [bad, good], [poison, result("neutral")])

    assert outcomes[bad] is poison
    row = get_content(db_conn, bad)
    assert row.quarantined_at is not None and row.quarantine_reason == REASON
    assert [(p.content_id, p.reason) for p in quarantined(db_conn)] == [(bad, REASON)]
    assert get_content(db_conn, good).quarantined_at is None
    assert stats(db_conn)["quarantined"] == 1


def test_quarantined_posts_are_left_out_of_unclassified_but_can_be_forced(
    db_conn: Conn, tmp_path: Path
) -> None:
    load(db_conn, tmp_path, [post("1", "bad words"), post("2", "other words")])
    bad, other = ids(db_conn)["1"], ids(db_conn)["2"]
    quarantine(db_conn, bad, REASON)

    assert [row.id for row in unclassified(db_conn)] == [other]
    assert unclassified_ids(db_conn) == [other]
    assert (stats(db_conn)["unclassified"], stats(db_conn)["quarantined"]) == (1, 1)
    todo, refused = classifiable(db_conn, [bad])  # classify --ids: a forced try
    assert [row.id for row in todo] == [bad] and not refused

    save_classification(db_conn, bad, result("negative"))  # the forced try succeeded
    assert get_content(db_conn, bad).quarantined_at is None
    assert quarantined(db_conn) == []


def test_an_import_that_changes_the_text_lifts_the_quarantine(
    db_conn: Conn, tmp_path: Path
) -> None:
    load(db_conn, tmp_path, [post("1", "bad words"), post("2", "worse words")])
    changed, same = ids(db_conn)["1"], ids(db_conn)["2"]
    quarantine(db_conn, changed, REASON)
    quarantine(db_conn, same, REASON)

    load(db_conn, tmp_path, [post("1", "kind words"), post("2", "worse words", author="new")])

    assert get_content(db_conn, changed).quarantined_at is None
    assert get_content(db_conn, changed).quarantine_reason is None
    assert [row.id for row in unclassified(db_conn)] == [changed]
    assert get_content(db_conn, same).quarantine_reason == REASON, "same text: still poison"
