"""The intelligence functions: classify stored posts and read the results back.

Plain functions over a psycopg connection and a `Classifier`. Each stored result is written
together with `contents.classified` in one transaction, and the unique constraint on
`classifications.content_id` keeps one row per post even when two processes race (the loser
gets `AlreadyClassified`, nothing crashes).

>>> with connect(url) as conn, Classifier() as clf:                     # doctest: +SKIP
...     classify_content(conn, clf, 42).sentiment
'negative'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from volfefe.errors import (
    AlreadyClassified,
    ClassifierError,
    ContentNotFound,
    NoTextError,
    PoisonText,
    VolfefeError,
)
from volfefe.result import Classification
from volfefe.store.posts import (
    ContentRow,
    contents_by_ids,
    get_classification_by_content,
    list_by_sentiment,
    list_classifications,
    list_high_confidence,
    outdated,
    replace_classification,
    save_classification,
    save_classifications,
    sentiment_distribution,
    unclassified,
)
from volfefe.store.quarantine import quarantine
from volfefe.supervisor.classifier import Classifier

Outcome = Classification | VolfefeError

__all__ = [
    "Outcome",
    "batch_classify_contents",
    "classifiable",
    "classify_content",
    "classify_rows",
    "get_classification_by_content",
    "list_by_sentiment",
    "list_classifications",
    "list_high_confidence",
    "precheck",
    "reclassify",
    "sentiment_distribution",
    "unclassified",
]


def classify_content(
    conn: psycopg.Connection[Any], classifier: Classifier, content_id: int
) -> Classification:
    """Classify one stored post and store the result.

    Raises ContentNotFound, NoTextError (empty text), AlreadyClassified, or a ClassifierError
    (PoisonText after quarantining the post). A quarantined post is tried: calling this on
    it is a forced try.
    """
    outcome = batch_classify_contents(conn, classifier, [content_id])[content_id]
    if isinstance(outcome, VolfefeError):
        raise outcome
    return outcome


def batch_classify_contents(
    conn: psycopg.Connection[Any], classifier: Classifier, ids: Iterable[int]
) -> dict[int, Outcome]:
    """Classify the posts `ids` in one pool call; one outcome per id, in the order given.

    A post that is missing, has no text or is classified already gets its error without
    being sent to the model; the others are classified and stored one transaction each.
    """
    wanted = list(dict.fromkeys(ids))
    todo, refused = classifiable(conn, wanted)
    outcomes: dict[int, Outcome] = {**refused, **classify_rows(conn, classifier, todo)}
    return {content_id: outcomes[content_id] for content_id in wanted}


def classifiable(
    conn: psycopg.Connection[Any], ids: Iterable[int]
) -> tuple[list[ContentRow], dict[int, VolfefeError]]:
    """The posts among `ids` that can be classified now (in the order given), and why each of
    the others cannot (missing, no text, classified already): `precheck` on every id."""
    wanted = list(dict.fromkeys(ids))
    rows = {row.id: row for row in contents_by_ids(conn, wanted)}
    todo: list[ContentRow] = []
    refused: dict[int, VolfefeError] = {}
    for content_id in wanted:
        row = rows.get(content_id)
        refusal = precheck(content_id, row)
        if refusal is not None:
            refused[content_id] = refusal
        elif row is not None:
            todo.append(row)
    return todo, refused


def precheck(content_id: int, row: ContentRow | None) -> VolfefeError | None:
    """Why post `content_id` cannot be classified now (missing, no text, done), or None."""
    if row is None:
        return ContentNotFound(content_id)
    if not row.has_text:
        return NoTextError(f"content {content_id} has no text")
    if row.classified:
        return AlreadyClassified(content_id)
    return None


def classify_rows(
    conn: psycopg.Connection[Any],
    classifier: Classifier,
    rows: list[ContentRow],
    *,
    replace: bool = False,
) -> dict[int, Outcome]:
    """Classify `rows` and store each result (`replace=True` overwrites an existing one)."""
    results = classifier.classify_many([row.text for row in rows], return_exceptions=True)
    return store_results(conn, [row.id for row in rows], results, replace=replace)


def store_results(
    conn: psycopg.Connection[Any],
    ids: list[int],
    results: list[Classification | ClassifierError],
    *,
    replace: bool = False,
) -> dict[int, Outcome]:
    """Write the successful results of one batch in one transaction.

    First results go in one statement (`save_classifications`); when that breaks a
    constraint (a post deleted meanwhile), or with `replace`, or when a post comes twice,
    each is written alone, in a savepoint of its own. A `PoisonText` result quarantines its
    post (`volfefe.store.quarantine`) in the same transaction; the post's outcome stays the
    PoisonText.
    """
    outcomes: dict[int, Outcome] = {}
    good: list[tuple[int, Classification]] = []
    with conn.transaction():
        for content_id, result in zip(ids, results, strict=True):
            if isinstance(result, ClassifierError):
                if isinstance(result, PoisonText):
                    quarantine(conn, content_id, result.reason)
                outcomes[content_id] = result
            else:
                good.append((content_id, result))
        if not replace and len({content_id for content_id, _ in good}) == len(good):
            try:
                with conn.transaction():  # a savepoint: on failure, try row by row
                    outcomes.update(save_classifications(conn, good))
                    return outcomes
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
                pass
        write = replace_classification if replace else save_classification
        for content_id, result in good:
            try:
                write(conn, content_id, result)
            except (AlreadyClassified, ContentNotFound) as exc:
                outcomes[content_id] = exc
            else:
                outcomes[content_id] = result
    return outcomes


def reclassify(
    conn: psycopg.Connection[Any],
    classifier: Classifier,
    *,
    limit: int | None = None,
    ids: Iterable[int] | None = None,
) -> dict[int, Outcome]:
    """Replace results made by another `model_version` than the classifier's (opt-in).

    Without `ids`, takes up to `limit` outdated posts, oldest first; with `ids`, those posts
    whatever model classified them.
    """
    if ids is not None:
        rows = [row for row in contents_by_ids(conn, ids) if row.has_text]
    else:
        rows = outdated(conn, classifier.model_version, limit=limit)
    return classify_rows(conn, classifier, rows, replace=True)
