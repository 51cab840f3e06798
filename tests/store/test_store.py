"""The store functions on real PostgreSQL: results saved once, constraints, queries, stats."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.store.helpers import eventually, ids, load, post, result, write_csv
from volfefe.classify.intelligence import store_results
from volfefe.errors import AlreadyClassified, ContentNotFound, PoisonText
from volfefe.result import Classification
from volfefe.store.connect import connect
from volfefe.store.importer import import_posts
from volfefe.store.posts import (
    contents_by_ids,
    get_classification_by_content,
    get_content,
    list_by_sentiment,
    list_classifications,
    list_high_confidence,
    outdated,
    replace_classification,
    save_classification,
    sentiment_distribution,
    stats,
    unclassified,
)

pytestmark = pytest.mark.both_backends  # the store's SQL on both servers

Conn = psycopg.Connection[Any]

NASTY_TEXTS = [
    "It's \"HUGE\" -- 'believe me'",
    "C:\\path\\to\\file \\n is not a newline \\\\",
    "Stocks 🚀🚀🚀 to the moon 🇺🇸 — “quotes” ½ é 漢字",
    "'; DROP TABLE contents; -- %s %(text)s {} $1 $$ E'\\x00'",
    "line one\nline two\r\nline three\ttabbed",
    "  leading and trailing whitespace kept  ",
]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_texts_are_stored_verbatim(db_conn: Conn, tmp_path: Path, suffix: str) -> None:
    records = [post(str(i), text=text, author=text) for i, text in enumerate(NASTY_TEXTS)]
    if suffix == ".csv":
        report = import_posts(db_conn, write_csv(tmp_path / "nasty.csv", records))
    else:
        report = load(db_conn, tmp_path, records)
    assert report.rejected == []
    for i, text in enumerate(NASTY_TEXTS):
        row = get_content(db_conn, ids(db_conn)[str(i)])
        assert (row.text, row.author) == (text, text)


def test_save_then_save_again_raises_already_classified(db_conn: Conn, tmp_path: Path) -> None:
    load(db_conn, tmp_path, [post("1")])
    content_id = ids(db_conn)["1"]

    stored = save_classification(db_conn, content_id, result("negative", 0.8))

    assert (stored.content_id, stored.sentiment, stored.confidence) == (content_id, "negative", 0.8)
    assert stored.meta == {
        "raw_scores": pytest.approx(result("negative", 0.8).raw_scores),
        "truncated": False,
        "tokens": 7,
    }
    assert stored.to_classification() == result("negative", 0.8)
    assert get_content(db_conn, content_id).classified is True
    with pytest.raises(AlreadyClassified) as caught:
        save_classification(db_conn, content_id, result("positive", 0.99))
    assert caught.value.content_id == content_id
    assert get_classification_by_content(db_conn, content_id) == stored


def test_saving_for_an_unknown_post_raises_content_not_found(db_conn: Conn) -> None:
    with pytest.raises(ContentNotFound):
        save_classification(db_conn, 424242, result())
    with pytest.raises(ContentNotFound):
        get_content(db_conn, 424242)
    assert get_classification_by_content(db_conn, 424242) is None


def test_two_connections_racing_store_exactly_one(
    db_conn: Conn, database_url: str, tmp_path: Path
) -> None:
    load(db_conn, tmp_path, [post("1")])
    content_id = ids(db_conn)["1"]

    with connect(database_url) as first, connect(database_url) as second:
        waiting_pid = second.info.backend_pid

        def second_is_blocked() -> bool:
            row = db_conn.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %(pid)s",
                {"pid": waiting_pid},
            ).fetchone()
            return row is not None and row["wait_event_type"] == "Lock"

        with ThreadPoolExecutor(1) as pool:
            with first.transaction():  # holds the new row's index entry until it commits
                save_classification(first, content_id, result("positive"))
                racing = pool.submit(save_classification, second, content_id, result("negative"))
                eventually(second_is_blocked)
            with pytest.raises(AlreadyClassified):
                racing.result(timeout=10)

    count = db_conn.execute(
        "SELECT count(*) AS n FROM classifications WHERE content_id = %(id)s", {"id": content_id}
    ).fetchone()
    assert count == {"n": 1}
    assert get_classification_by_content(db_conn, content_id).sentiment == "positive"  # type: ignore[union-attr]


def test_a_rolled_back_save_leaves_the_post_unclassified(db_conn: Conn, tmp_path: Path) -> None:
    load(db_conn, tmp_path, [post("1")])
    content_id = ids(db_conn)["1"]
    with pytest.raises(RuntimeError), db_conn.transaction():
        save_classification(db_conn, content_id, result())
        raise RuntimeError("the job failed after saving")
    assert get_content(db_conn, content_id).classified is False
    assert get_classification_by_content(db_conn, content_id) is None


@pytest.mark.parametrize(
    "column, value",
    [
        ("sentiment", "bullish"),
        ("confidence", 1.5),
        ("confidence", -0.01),
        ("confidence", math.nan),
        ("model_version", ""),
        ("meta", Jsonb([1, 2])),
    ],
)
def test_the_database_rejects_bad_classifications(
    db_conn: Conn, tmp_path: Path, column: str, value: object
) -> None:
    load(db_conn, tmp_path, [post("1")])
    row: dict[str, object] = {
        "content_id": ids(db_conn)["1"],
        "sentiment": "neutral",
        "confidence": 0.5,
        "model_version": "m@1",
        "meta": Jsonb({}),
    }
    row[column] = value
    with pytest.raises(psycopg.errors.CheckViolation):
        db_conn.execute(
            "INSERT INTO classifications (content_id, sentiment, confidence, model_version, meta)"
            " VALUES (%(content_id)s, %(sentiment)s, %(confidence)s, %(model_version)s, %(meta)s)",
            row,
        )


def test_bad_values_through_save_fail_without_marking_the_post(
    db_conn: Conn, tmp_path: Path
) -> None:
    load(db_conn, tmp_path, [post("1")])
    content_id = ids(db_conn)["1"]
    with pytest.raises(psycopg.errors.CheckViolation):
        save_classification(db_conn, content_id, result("bullish"))
    assert get_content(db_conn, content_id).classified is False


def test_other_constraints(db_conn: Conn, tmp_path: Path) -> None:
    load(db_conn, tmp_path, [post("1")])
    content_id = ids(db_conn)["1"]
    save_classification(db_conn, content_id, result())
    with pytest.raises(psycopg.errors.UniqueViolation):
        db_conn.execute(
            "INSERT INTO classifications (content_id, sentiment, confidence, model_version, meta)"
            " VALUES (%(id)s, 'neutral', 0.5, 'm', '{}')",
            {"id": content_id},
        )
    with pytest.raises(psycopg.errors.UniqueViolation):
        db_conn.execute(
            "INSERT INTO contents (source_id, external_id) SELECT source_id, external_id"
            " FROM contents WHERE id = %(id)s",
            {"id": content_id},
        )
    db_conn.execute("DELETE FROM contents WHERE id = %(id)s", {"id": content_id})
    assert db_conn.execute("SELECT count(*) AS n FROM classifications").fetchone() == {"n": 0}


def test_replace_classification_upserts(db_conn: Conn, tmp_path: Path) -> None:
    load(db_conn, tmp_path, [post("1"), post("2")])
    one, two = ids(db_conn)["1"], ids(db_conn)["2"]
    first = save_classification(db_conn, one, result("positive", model_version="m@1"))

    again = replace_classification(db_conn, one, result("negative", 0.7, model_version="m@2"))
    fresh = replace_classification(db_conn, two, result("neutral", 0.6))

    assert (again.id, again.sentiment, again.model_version) == (first.id, "negative", "m@2")
    assert again.updated_at >= first.updated_at
    assert get_content(db_conn, two).classified is True
    assert fresh.content_id == two
    with pytest.raises(ContentNotFound):
        replace_classification(db_conn, 424242, result())


def test_unclassified_is_oldest_first_and_skips_empty_text(db_conn: Conn, tmp_path: Path) -> None:
    load(
        db_conn,
        tmp_path,
        [
            post("a"),
            post("empty", text=""),
            post("b"),
            post("blank", text=" \t\n\u3000\u00a0"),
            post("c"),
            post("d"),
        ],
    )
    by_id = ids(db_conn)
    save_classification(db_conn, by_id["b"], result())

    assert [row.external_id for row in unclassified(db_conn)] == ["a", "c", "d"]
    assert [row.external_id for row in unclassified(db_conn, limit=2)] == ["a", "c"]
    assert unclassified(db_conn, limit=0) == []
    assert get_content(db_conn, by_id["blank"]).has_text is False
    with pytest.raises(ValueError, match="limit"):
        unclassified(db_conn, limit=-1)


def test_contents_by_ids_and_outdated(db_conn: Conn, tmp_path: Path) -> None:
    load(db_conn, tmp_path, [post("a"), post("b"), post("c")])
    by_id = ids(db_conn)
    save_classification(db_conn, by_id["a"], result(model_version="m@old"))
    save_classification(db_conn, by_id["c"], result(model_version="m@new"))

    rows = contents_by_ids(db_conn, [by_id["c"], by_id["a"], 424242])
    assert [row.external_id for row in rows] == ["a", "c"]
    assert [row.external_id for row in outdated(db_conn, "m@new")] == ["a"]
    assert outdated(db_conn, "m@new", limit=0) == []


def test_lists_distribution_and_stats(db_conn: Conn, tmp_path: Path) -> None:
    assert sentiment_distribution(db_conn) == {"positive": 0, "negative": 0, "neutral": 0}
    load(db_conn, tmp_path, [post(str(i)) for i in range(5)] + [post("empty", text="  ")])
    by_id = ids(db_conn)
    save_classification(db_conn, by_id["0"], result("positive", 0.99))
    save_classification(db_conn, by_id["1"], result("positive", 0.6))
    save_classification(db_conn, by_id["2"], result("negative", 0.95))

    assert sentiment_distribution(db_conn) == {"positive": 2, "negative": 1, "neutral": 0}
    assert [c.content_id for c in list_classifications(db_conn)] == [by_id[k] for k in "210"]
    assert [c.content_id for c in list_classifications(db_conn, limit=1, offset=1)] == [by_id["1"]]
    assert [c.confidence for c in list_by_sentiment(db_conn, "positive")] == [0.99, 0.6]
    assert [c.confidence for c in list_high_confidence(db_conn)] == [0.99, 0.95]
    assert [c.confidence for c in list_high_confidence(db_conn, 0.96, limit=5)] == [0.99]
    with pytest.raises(ValueError, match="sentiment must be one of"):
        list_by_sentiment(db_conn, "bullish")

    assert stats(db_conn, 0.9) == {
        "total": 6,
        "classified": 3,
        "unclassified": 2,
        "quarantined": 0,
        "empty_text": 1,
        "distribution": {"positive": 2, "negative": 1, "neutral": 0},
        "high_confidence": 2,
        "threshold": 0.9,
    }
    assert stats(db_conn, 0.5)["high_confidence"] == 3
    with pytest.raises(ValueError, match="threshold"):
        stats(db_conn, 1.5)


def test_a_batch_of_results_is_stored_in_one_go_with_each_posts_outcome(
    db_conn: Conn, tmp_path: Path
) -> None:
    load(db_conn, tmp_path, [post("new-1"), post("done"), post("new-2"), post("poison")])
    by_id = ids(db_conn)
    save_classification(db_conn, by_id["done"], result("negative"))
    db_conn.execute(
        "UPDATE contents SET quarantined_at = now(), quarantine_reason = 'r' WHERE id = %s",
        [by_id["new-2"]],  # a forced try that succeeds lifts a quarantine
    )
    batch = [by_id["new-2"], by_id["done"], 424242, by_id["poison"], by_id["new-1"]]
    given = [result("neutral"), result(), result(), PoisonText("it killed 2 children"), result()]

    outcomes = store_results(db_conn, batch, given)

    assert outcomes[by_id["new-2"]] is given[0] and outcomes[by_id["new-1"]] is given[4]
    assert isinstance(outcomes[by_id["done"]], AlreadyClassified)
    assert isinstance(outcomes[424242], ContentNotFound)
    assert isinstance(outcomes[by_id["poison"]], PoisonText)
    stored = list_classifications(db_conn)  # newest first: inserted in the batch's order
    assert [c.content_id for c in stored] == [by_id[k] for k in ("new-1", "new-2", "done")]
    assert get_classification_by_content(db_conn, by_id["done"]).sentiment == "negative"
    rows = {row.external_id: row for row in contents_by_ids(db_conn, list(by_id.values()))}
    assert rows["new-2"].classified and rows["new-2"].quarantine_reason is None
    assert not rows["poison"].classified and rows["poison"].quarantine_reason


def test_a_batch_that_breaks_a_constraint_is_stored_row_by_row(
    db_conn: Conn, tmp_path: Path
) -> None:
    load(db_conn, tmp_path, [post("a"), post("b")])
    by_id = ids(db_conn)
    bad = Classification("positive", 1.5, "m@1")  # the database checks 0 <= confidence <= 1
    with pytest.raises(psycopg.errors.CheckViolation):
        store_results(db_conn, [by_id["a"], by_id["b"]], [result(), bad])
    assert get_classification_by_content(db_conn, by_id["a"]) is None  # one transaction

    outcomes = store_results(db_conn, [by_id["a"], by_id["a"]], [result(), result()])
    assert isinstance(outcomes[by_id["a"]], AlreadyClassified)  # twice: row by row
