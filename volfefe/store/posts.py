"""Posts and their classifications in PostgreSQL: plain functions over a psycopg connection.

Every function takes a `psycopg.Connection` of any row factory (it opens its own dict-row
cursor). Writes run in `conn.transaction()`: on an autocommit connection (what
`volfefe.store.connect.connect` gives) that is a transaction of its own; inside a caller's
transaction it becomes a savepoint, so a job can save a result and enqueue follow-up work
atomically.

>>> save_classification(conn, 1, Classification("positive", 0.97, "finbert@abc"))  # doctest: +SKIP
StoredClassification(id=1, content_id=1, sentiment='positive', confidence=0.97, ...)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from volfefe.errors import AlreadyClassified, ContentNotFound
from volfefe.protocol import is_blank
from volfefe.result import SENTIMENTS, Classification

BIGINT_MAX = (1 << 63) - 1  # every id is a PostgreSQL bigint: no row has a larger one


@dataclass(frozen=True, slots=True)
class ContentRow:
    """One post as stored; `source` is the source's name.

    >>> ContentRow(1, "truth_social", "ts-1", "someone", "Tariffs!", None, None, False,
    ...            datetime(2025, 1, 1), datetime(2025, 1, 1)).has_text
    True
    """

    id: int
    source: str
    external_id: str
    author: str | None
    text: str
    url: str | None
    published_at: datetime | None
    classified: bool
    inserted_at: datetime
    updated_at: datetime
    quarantined_at: datetime | None = None  # set while the post is quarantined (poison)
    quarantine_reason: str | None = None

    @property
    def has_text(self) -> bool:
        """False for blank text (`volfefe.protocol.is_blank`), stored but never classified.

        The generated column `contents.has_text` is the database's copy of the same rule.
        """
        return not is_blank(self.text)


@dataclass(frozen=True, slots=True)
class StoredClassification:
    """A classification as stored for one post (`meta` holds raw scores, truncation, tokens).

    >>> StoredClassification(1, 7, "neutral", 0.5, "m@1", {"raw_scores": {}}, datetime(2025, 1, 1),
    ...                      datetime(2025, 1, 1)).to_classification().sentiment
    'neutral'
    """

    id: int
    content_id: int
    sentiment: str
    confidence: float
    model_version: str
    meta: dict[str, Any]
    inserted_at: datetime
    updated_at: datetime

    def to_classification(self) -> Classification:
        """The stored result as a `Classification`."""
        return Classification.from_dict(
            {
                "sentiment": self.sentiment,
                "confidence": self.confidence,
                "model_version": self.model_version,
                "meta": self.meta,
            }
        )


GET_CONTENT = """
SELECT c.id, s.name AS source, c.external_id, c.author, c.text, c.url, c.published_at,
       c.classified, c.inserted_at, c.updated_at, c.quarantined_at, c.quarantine_reason
FROM contents AS c
JOIN sources AS s ON s.id = c.source_id
WHERE c.id = %(id)s
"""
CONTENTS_BY_IDS = """
SELECT c.id, s.name AS source, c.external_id, c.author, c.text, c.url, c.published_at,
       c.classified, c.inserted_at, c.updated_at, c.quarantined_at, c.quarantine_reason
FROM contents AS c
JOIN sources AS s ON s.id = c.source_id
WHERE c.id = ANY(%(ids)s::bigint[])
ORDER BY c.id
"""
# `NOT classified AND has_text` matches the partial index; NOT EXISTS keeps the answer right
# even if someone deleted a classification by hand without resetting the flag.
UNCLASSIFIED = """
SELECT c.id, s.name AS source, c.external_id, c.author, c.text, c.url, c.published_at,
       c.classified, c.inserted_at, c.updated_at, c.quarantined_at, c.quarantine_reason
FROM contents AS c
JOIN sources AS s ON s.id = c.source_id
WHERE NOT c.classified AND c.has_text AND c.quarantined_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM classifications AS k WHERE k.content_id = c.id)
ORDER BY c.id
LIMIT %(limit)s
"""
OUTDATED = """
SELECT c.id, s.name AS source, c.external_id, c.author, c.text, c.url, c.published_at,
       c.classified, c.inserted_at, c.updated_at, c.quarantined_at, c.quarantine_reason
FROM contents AS c
JOIN sources AS s ON s.id = c.source_id
JOIN classifications AS k ON k.content_id = c.id
WHERE k.model_version <> %(model_version)s
ORDER BY c.id
LIMIT %(limit)s
"""
INSERT_CLASSIFICATION = """
INSERT INTO classifications (content_id, sentiment, confidence, model_version, meta)
VALUES (%(content_id)s, %(sentiment)s, %(confidence)s, %(model_version)s, %(meta)s)
ON CONFLICT (content_id) DO NOTHING
RETURNING id, content_id, sentiment, confidence, model_version, meta, inserted_at, updated_at
"""
UPSERT_CLASSIFICATION = """
INSERT INTO classifications (content_id, sentiment, confidence, model_version, meta)
VALUES (%(content_id)s, %(sentiment)s, %(confidence)s, %(model_version)s, %(meta)s)
ON CONFLICT (content_id) DO UPDATE
SET sentiment = excluded.sentiment, confidence = excluded.confidence,
    model_version = excluded.model_version, meta = excluded.meta, updated_at = now()
RETURNING id, content_id, sentiment, confidence, model_version, meta, inserted_at, updated_at
"""
# A batch of first results in one statement: each one whose post exists and has none yet is
# inserted, in the given order, and its post marked classified (see save_classifications).
SAVE_MANY = """
WITH given AS (
    SELECT * FROM unnest(
        %(content_ids)s::bigint[], %(sentiments)s::text[],
        %(confidences)s::double precision[], %(model_versions)s::text[], %(metas)s::jsonb[]
    ) WITH ORDINALITY AS g(content_id, sentiment, confidence, model_version, meta, position)
), inserted AS (
    INSERT INTO classifications (content_id, sentiment, confidence, model_version, meta)
    SELECT g.content_id, g.sentiment, g.confidence, g.model_version, g.meta
    FROM given g JOIN contents c ON c.id = g.content_id
    ORDER BY g.position
    ON CONFLICT (content_id) DO NOTHING
    RETURNING content_id
), marked AS (
    UPDATE contents SET classified = true, quarantined_at = NULL, quarantine_reason = NULL
    FROM inserted WHERE contents.id = inserted.content_id
    RETURNING contents.id
)
SELECT g.content_id,
       EXISTS (SELECT 1 FROM marked m WHERE m.id = g.content_id) AS stored,
       EXISTS (SELECT 1 FROM contents c WHERE c.id = g.content_id) AS found
FROM given g
"""
# A stored result also lifts a quarantine (a forced try succeeded).
MARK_CLASSIFIED = """
UPDATE contents SET classified = true, quarantined_at = NULL, quarantine_reason = NULL
WHERE id = %(content_id)s
"""
BY_CONTENT = """
SELECT id, content_id, sentiment, confidence, model_version, meta, inserted_at, updated_at
FROM classifications
WHERE content_id = %(content_id)s
"""
LIST = """
SELECT id, content_id, sentiment, confidence, model_version, meta, inserted_at, updated_at
FROM classifications
ORDER BY id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""
BY_SENTIMENT = """
SELECT id, content_id, sentiment, confidence, model_version, meta, inserted_at, updated_at
FROM classifications
WHERE sentiment = %(sentiment)s
ORDER BY confidence DESC, id
LIMIT %(limit)s
"""
HIGH_CONFIDENCE = """
SELECT id, content_id, sentiment, confidence, model_version, meta, inserted_at, updated_at
FROM classifications
WHERE confidence >= %(threshold)s
ORDER BY confidence DESC, id
LIMIT %(limit)s
"""
DISTRIBUTION = "SELECT sentiment, count(*) AS n FROM classifications GROUP BY sentiment"
STATS = """
SELECT count(*) AS total,
       count(k.id) AS classified,
       count(*) FILTER (WHERE k.id IS NULL AND c.has_text AND c.quarantined_at IS NULL)
           AS unclassified,
       count(*) FILTER (WHERE k.id IS NULL AND c.quarantined_at IS NOT NULL) AS quarantined,
       count(*) FILTER (WHERE NOT c.has_text) AS empty_text,
       count(*) FILTER (WHERE k.confidence >= %(threshold)s) AS high_confidence,
       count(*) FILTER (WHERE k.sentiment = 'positive') AS positive,
       count(*) FILTER (WHERE k.sentiment = 'negative') AS negative,
       count(*) FILTER (WHERE k.sentiment = 'neutral') AS neutral
FROM contents AS c
LEFT JOIN classifications AS k ON k.content_id = c.id
"""


def get_content(conn: psycopg.Connection[Any], content_id: int) -> ContentRow:
    """The post with this id, or `ContentNotFound`.

    >>> get_content(conn, 1).external_id  # doctest: +SKIP
    'ts-000263'
    """
    with conn.cursor(row_factory=class_row(ContentRow)) as cur:
        row = cur.execute(GET_CONTENT, {"id": content_id}).fetchone()
    if row is None:
        raise ContentNotFound(content_id)
    return row


def contents_by_ids(conn: psycopg.Connection[Any], ids: Iterable[int]) -> list[ContentRow]:
    """The posts with these ids, by id; unknown ids are left out.

    >>> [row.id for row in contents_by_ids(conn, [3, 1, 99])]  # doctest: +SKIP
    [1, 3]
    """
    with conn.cursor(row_factory=class_row(ContentRow)) as cur:
        return cur.execute(CONTENTS_BY_IDS, {"ids": list(ids)}).fetchall()


def unclassified(conn: psycopg.Connection[Any], *, limit: int | None = None) -> list[ContentRow]:
    """Posts with text (not just whitespace), no classification and not quarantined, oldest
    id first.

    >>> [row.id for row in unclassified(conn, limit=2)]  # doctest: +SKIP
    [1, 2]
    """
    with conn.cursor(row_factory=class_row(ContentRow)) as cur:
        return cur.execute(UNCLASSIFIED, {"limit": _check_limit(limit)}).fetchall()


def outdated(
    conn: psycopg.Connection[Any], model_version: str, *, limit: int | None = None
) -> list[ContentRow]:
    """Classified posts whose classification came from another model version, oldest id first.

    >>> outdated(conn, "finbert@new", limit=10)  # doctest: +SKIP
    [ContentRow(id=1, ...)]
    """
    params = {"model_version": model_version, "limit": _check_limit(limit)}
    with conn.cursor(row_factory=class_row(ContentRow)) as cur:
        return cur.execute(OUTDATED, params).fetchall()


def save_classification(
    conn: psycopg.Connection[Any], content_id: int, c: Classification
) -> StoredClassification:
    """Store the first classification of a post and mark it classified, in one transaction.

    Raises `AlreadyClassified` if the post has one already, also when another process saved
    it a moment earlier (the unique index decides), and `ContentNotFound` for an unknown id.

    >>> save_classification(conn, 1, Classification("negative", 0.8, "m@1"))  # doctest: +SKIP
    StoredClassification(id=1, content_id=1, sentiment='negative', ...)
    >>> save_classification(conn, 1, Classification("negative", 0.8, "m@1"))  # doctest: +SKIP
    Traceback (most recent call last):
    volfefe.errors.AlreadyClassified: content 1 is already classified
    """
    return _write(conn, INSERT_CLASSIFICATION, content_id, c)


def save_classifications(
    conn: psycopg.Connection[Any], results: Sequence[tuple[int, Classification]]
) -> dict[int, Classification | AlreadyClassified | ContentNotFound]:
    """Store the first classifications of many posts in one statement, as
    `save_classification` does one by one: per post its result when stored (and the post
    marked classified), `AlreadyClassified` when it had one, `ContentNotFound` when it does
    not exist. Each post at most once in `results`. A constraint the statement breaks (a post
    deleted meanwhile) raises psycopg's IntegrityError and stores none of them.

    >>> save_classifications(conn, [(1, Classification("negative", 0.8, "m@1"))])  # doctest: +SKIP
    {1: Classification(sentiment='negative', ...)}
    """
    if not results:
        return {}
    params = {
        "content_ids": [content_id for content_id, _ in results],
        "sentiments": [c.sentiment for _, c in results],
        "confidences": [c.confidence for _, c in results],
        "model_versions": [c.model_version for _, c in results],
        "metas": [Jsonb(c.meta()) for _, c in results],
    }
    given = dict(results)
    outcomes: dict[int, Classification | AlreadyClassified | ContentNotFound] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(SAVE_MANY, params).fetchall():
            content_id = row["content_id"]
            if row["stored"]:
                outcomes[content_id] = given[content_id]
            elif row["found"]:
                outcomes[content_id] = AlreadyClassified(content_id)
            else:
                outcomes[content_id] = ContentNotFound(content_id)
    return outcomes


def replace_classification(
    conn: psycopg.Connection[Any], content_id: int, c: Classification
) -> StoredClassification:
    """Store a classification whether or not the post has one (reclassify); mark it classified.

    >>> again = Classification("neutral", 0.6, "m@2")
    >>> replace_classification(conn, 1, again).model_version  # doctest: +SKIP
    'm@2'
    """
    return _write(conn, UPSERT_CLASSIFICATION, content_id, c)


def get_classification_by_content(
    conn: psycopg.Connection[Any], content_id: int
) -> StoredClassification | None:
    """The classification of a post, or None when it has none (or the post does not exist).

    >>> get_classification_by_content(conn, 1).sentiment  # doctest: +SKIP
    'negative'
    """
    with conn.cursor(row_factory=class_row(StoredClassification)) as cur:
        return cur.execute(BY_CONTENT, {"content_id": content_id}).fetchone()


def list_classifications(
    conn: psycopg.Connection[Any], *, limit: int = 100, offset: int = 0
) -> list[StoredClassification]:
    """Classifications, newest first, one page at a time.

    >>> len(list_classifications(conn, limit=10, offset=10))  # doctest: +SKIP
    10
    """
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    params = {"limit": _check_limit(limit), "offset": offset}
    with conn.cursor(row_factory=class_row(StoredClassification)) as cur:
        return cur.execute(LIST, params).fetchall()


def list_by_sentiment(
    conn: psycopg.Connection[Any], sentiment: str, *, limit: int = 100
) -> list[StoredClassification]:
    """Classifications with this sentiment, most confident first.

    >>> {c.sentiment for c in list_by_sentiment(conn, "negative")}  # doctest: +SKIP
    {'negative'}
    """
    if sentiment not in SENTIMENTS:
        raise ValueError(f"sentiment must be one of {', '.join(SENTIMENTS)}, got {sentiment!r}")
    params = {"sentiment": sentiment, "limit": _check_limit(limit)}
    with conn.cursor(row_factory=class_row(StoredClassification)) as cur:
        return cur.execute(BY_SENTIMENT, params).fetchall()


def list_high_confidence(
    conn: psycopg.Connection[Any], threshold: float = 0.9, *, limit: int = 100
) -> list[StoredClassification]:
    """Classifications with confidence >= threshold, most confident first.

    >>> all(c.confidence >= 0.9 for c in list_high_confidence(conn))  # doctest: +SKIP
    True
    """
    params = {"threshold": _check_threshold(threshold), "limit": _check_limit(limit)}
    with conn.cursor(row_factory=class_row(StoredClassification)) as cur:
        return cur.execute(HIGH_CONFIDENCE, params).fetchall()


def sentiment_distribution(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """How many classifications have each sentiment; all three keys are always present.

    >>> sentiment_distribution(conn)  # doctest: +SKIP
    {'positive': 2, 'negative': 1, 'neutral': 0}
    """
    counts = dict.fromkeys(SENTIMENTS, 0)
    with conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(DISTRIBUTION):
            counts[row["sentiment"]] = row["n"]
    return counts


def stats(conn: psycopg.Connection[Any], threshold: float = 0.9) -> dict[str, Any]:
    """Counts over all posts, from one consistent snapshot.

    `unclassified` counts posts with text, no classification and no quarantine;
    `quarantined` counts posts whose text killed a child (see `volfefe.store.quarantine`);
    `empty_text` counts posts whose text is empty or whitespace (they are never classified).

    >>> stats(conn, 0.9)  # doctest: +SKIP
    {'total': 5, 'classified': 3, 'unclassified': 1, 'quarantined': 0, 'empty_text': 1,
     'distribution':
     {'positive': 2, 'negative': 1, 'neutral': 0}, 'high_confidence': 2, 'threshold': 0.9}
    """
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(STATS, {"threshold": _check_threshold(threshold)}).fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return {
        "total": row["total"],
        "classified": row["classified"],
        "unclassified": row["unclassified"],
        "quarantined": row["quarantined"],
        "empty_text": row["empty_text"],
        "distribution": {name: row[name] for name in SENTIMENTS},
        "high_confidence": row["high_confidence"],
        "threshold": threshold,
    }


def _write(
    conn: psycopg.Connection[Any], query: str, content_id: int, c: Classification
) -> StoredClassification:
    """Run an insert/upsert of a classification and set `contents.classified`, atomically."""
    params = {
        "content_id": content_id,
        "sentiment": c.sentiment,
        "confidence": c.confidence,
        "model_version": c.model_version,
        "meta": Jsonb(c.meta()),
    }
    try:
        with (
            conn.transaction(),
            conn.cursor(row_factory=class_row(StoredClassification)) as cur,
        ):
            stored = cur.execute(query, params).fetchone()
            if stored is None:
                raise AlreadyClassified(content_id)
            cur.execute(MARK_CLASSIFIED, {"content_id": content_id})
    except psycopg.errors.ForeignKeyViolation as err:
        raise ContentNotFound(content_id) from err
    return stored


def _check_limit(limit: int | None) -> int | None:
    """A LIMIT value (None means no limit); negative values are a caller's bug."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    return limit


def _check_threshold(threshold: float) -> float:
    """A confidence threshold, which only makes sense between 0 and 1."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    return threshold
