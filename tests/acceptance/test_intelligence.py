"""The intelligence functions with a real Classifier (tiny model) on real PostgreSQL.

Each test imports a few posts into its own database, then calls `classify_content`,
`batch_classify_contents` or `reclassify` as a library user would, and checks both what the
call returned and what the database holds.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.store.helpers import ids, load, post
from volfefe import Classifier
from volfefe.classify.intelligence import batch_classify_contents, classify_content, reclassify
from volfefe.errors import AlreadyClassified, ContentNotFound, NoTextError
from volfefe.result import Classification
from volfefe.store.connect import connect

ROOT = Path(__file__).resolve().parents[2]
SENTIMENTS = {"positive", "negative", "neutral"}
ROWS = """
SELECT id, content_id, sentiment, confidence, model_version, updated_at
FROM classifications
ORDER BY content_id
"""

MakeClassifier = Callable[..., Classifier]


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny model (another seed), so its model_version differs from `tiny_model`'s."""
    out = tmp_path_factory.mktemp("tiny-model-seed-7")
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_tiny_model.py"), str(out), "--seed", "7"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


def rows(conn: psycopg.Connection[Any]) -> dict[int, dict[str, Any]]:
    """Stored classifications by content id."""
    return {row["content_id"]: row for row in conn.execute(ROWS).fetchall()}


def classified_flags(conn: psycopg.Connection[Any]) -> dict[int, bool]:
    """contents.classified by content id."""
    found = conn.execute("SELECT id, classified FROM contents").fetchall()
    return {row["id"]: row["classified"] for row in found}


def test_classify_content_stores_once_then_refuses(
    db_conn: psycopg.Connection[Any], make_classifier: MakeClassifier, tmp_path: Path
) -> None:
    load(db_conn, tmp_path, [post("a", "stocks rally"), post("b", " \n\t")])
    post_ids = ids(db_conn)
    clf = make_classifier()

    first = classify_content(db_conn, clf, post_ids["a"])
    assert first.sentiment in SENTIMENTS and first.model_version == clf.model_version
    stored = rows(db_conn)
    assert list(stored) == [post_ids["a"]]
    assert stored[post_ids["a"]]["sentiment"] == first.sentiment
    assert stored[post_ids["a"]]["confidence"] == pytest.approx(first.confidence)
    assert classified_flags(db_conn)[post_ids["a"]] is True

    with pytest.raises(AlreadyClassified) as again:
        classify_content(db_conn, clf, post_ids["a"])
    assert again.value.content_id == post_ids["a"]
    with pytest.raises(NoTextError):
        classify_content(db_conn, clf, post_ids["b"])
    missing = max(post_ids.values()) + 1
    with pytest.raises(ContentNotFound) as not_found:
        classify_content(db_conn, clf, missing)
    assert not_found.value.content_id == missing
    assert rows(db_conn) == stored  # the refusals wrote nothing
    assert classified_flags(db_conn)[post_ids["b"]] is False


def test_batch_classify_contents_gives_one_outcome_per_id_in_order(
    db_conn: psycopg.Connection[Any], make_classifier: MakeClassifier, tmp_path: Path
) -> None:
    load(
        db_conn,
        tmp_path,
        [post("a", "stocks rally"), post("b", ""), post("c", "tariffs crush"), post("d", "oil")],
    )
    post_ids = ids(db_conn)
    a, b, c, d = (post_ids[k] for k in "abcd")
    missing = max(post_ids.values()) + 1
    clf = make_classifier()
    classify_content(db_conn, clf, d)
    before_d = rows(db_conn)[d]

    wanted = [c, missing, b, a, d, c]  # unsorted, with a duplicate
    outcomes = batch_classify_contents(db_conn, clf, wanted)

    assert list(outcomes) == [c, missing, b, a, d]  # the order given, each id once
    assert isinstance(outcomes[c], Classification) and isinstance(outcomes[a], Classification)
    assert isinstance(outcomes[missing], ContentNotFound)
    assert isinstance(outcomes[b], NoTextError)
    assert isinstance(outcomes[d], AlreadyClassified)
    stored = rows(db_conn)
    assert sorted(stored) == sorted([a, c, d])
    for content_id in (a, c):
        outcome = outcomes[content_id]
        assert isinstance(outcome, Classification)
        assert stored[content_id]["sentiment"] == outcome.sentiment
    assert stored[d] == before_d


def test_reclassify_replaces_only_outdated_results(
    db_conn: psycopg.Connection[Any],
    make_classifier: MakeClassifier,
    other_model: Path,
    tmp_path: Path,
) -> None:
    load(db_conn, tmp_path, [post("a", "stocks rally"), post("b", "fed cuts"), post("c", "oil")])
    post_ids = ids(db_conn)
    a, b, c = (post_ids[k] for k in "abc")
    old, new = make_classifier(), make_classifier(model=str(other_model))
    assert old.model_version != new.model_version
    for content_id in (a, b):
        classify_content(db_conn, old, content_id)
    classify_content(db_conn, new, c)
    before = rows(db_conn)

    outcomes = reclassify(db_conn, new)

    assert list(outcomes) == [a, b]
    assert all(
        isinstance(o, Classification) and o.model_version == new.model_version
        for o in outcomes.values()
    )
    after = rows(db_conn)
    assert {k: row["model_version"] for k, row in after.items()} == dict.fromkeys(
        (a, b, c), new.model_version
    )
    for content_id in (a, b):  # replaced in place: same row, newer update time
        assert after[content_id]["id"] == before[content_id]["id"]
        assert after[content_id]["updated_at"] > before[content_id]["updated_at"]
    assert after[c] == before[c]  # already current: untouched
    assert reclassify(db_conn, new) == {}  # nothing outdated is left


def test_two_threads_classifying_one_post_store_one_row(
    database_url: str, make_classifier: MakeClassifier, tmp_path: Path
) -> None:
    with connect(database_url) as conn:
        load(conn, tmp_path, [post("a", "stocks rally")])
        content_id = ids(conn)["a"]
    # Each reply waits 0.3 s, so both threads pass the "already classified?" check before
    # either stores: the unique constraint, not the check, has to pick the winner.
    clf = make_classifier(fault="delay=0.3")
    clf.start()
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[Classification | Exception] = []

    def attempt() -> None:
        with connect(database_url) as conn:
            barrier.wait()
            try:
                outcomes.append(classify_content(conn, clf, content_id))
            except AlreadyClassified as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)

    assert sorted(type(o).__name__ for o in outcomes) == ["AlreadyClassified", "Classification"]
    with connect(database_url) as conn:
        stored = rows(conn)
        assert list(stored) == [content_id]
        winner = next(o for o in outcomes if isinstance(o, Classification))
        assert stored[content_id]["sentiment"] == winner.sentiment
        assert classified_flags(conn) == {content_id: True}
