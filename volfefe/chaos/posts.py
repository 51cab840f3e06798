"""The harness's posts: synthetic market headlines, a few of them poison, imported in waves.

A poison post contains POISON_WORD; the harness's children run with the test-only fault
`poison=POISON_WORD`, so any request holding such a text SIGKILLs the child that gets it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import orjson

from volfefe.jobs.queue import enqueue
from volfefe.store.connect import connect
from volfefe.store.importer import import_posts

POISON_WORD = "chaospoison"
SOURCE = "chaos"
SUBJECTS = ("Stocks", "The Fed", "Oil", "Tariffs", "The dollar", "Bond yields", "Tech shares")
VERBS = ("rally", "slump", "hold steady", "surge", "tumble", "drift", "rebound")
REASONS = (
    "after the trade deal",
    "as rates are cut",
    "on weak jobs data",
    "before the election",
    "as China retaliates",
    "on record earnings",
)


@dataclass(frozen=True, slots=True)
class ChaosPost:
    """One post to import: its external id, text and whether it is poison."""

    external_id: str
    text: str
    poison: bool


def make_posts(rng: random.Random, count: int, poison: int) -> list[ChaosPost]:
    """`count` posts, `poison` of them (at random places) containing POISON_WORD."""
    bad = set(rng.sample(range(count), min(poison, count)))
    posts = []
    for i in range(count):
        words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(REASONS)]
        if i in bad:
            words.insert(rng.randrange(len(words) + 1), POISON_WORD)
        posts.append(ChaosPost(f"chaos-{i}", " ".join(words) + f" (#{i})", i in bad))
    return posts


def import_wave(url: str, folder: Path, wave: int, posts: list[ChaosPost]) -> dict[str, int]:
    """Import `posts` through the importer and queue a job for each; {external_id: post id}."""
    path = folder / f"wave-{wave}.jsonl"
    path.write_bytes(
        b"".join(
            orjson.dumps({"source": SOURCE, "external_id": p.external_id, "text": p.text}) + b"\n"
            for p in posts
        )
    )
    with connect(url) as conn:
        import_posts(conn, path)
        rows = conn.execute(
            "SELECT c.id, c.external_id FROM contents AS c JOIN sources AS s ON s.id = c.source_id"
            " WHERE s.name = %(source)s AND c.external_id = ANY(%(ids)s)",
            {"source": SOURCE, "ids": [p.external_id for p in posts]},
        ).fetchall()
        ids = {row["external_id"]: row["id"] for row in rows}
        enqueue(conn, sorted(ids.values()))
    return ids
