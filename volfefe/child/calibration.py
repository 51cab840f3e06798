"""Which posts calibrate a static int8 export, and which ones check it afterwards.

Static int8 fixes each activation's range from the calibration texts, so they should cover
the lengths the model will see: the sample is *length-stratified* (texts sorted by length,
cut into equal strata, one seeded pick per stratum). The held-out texts that the accuracy
guard scores are drawn the same way from what is left, so no calibration text is ever used
to judge the result.

```
posts ──stratified_sample(n + guard)──split_holdout(guard)──> calibration | held out
```

With no posts of one's own yet, `default_texts()` reads the shipped sample
(`volfefe/child/data/sample_posts.jsonl`, short and long market posts in English).
Standard library only: the CLI imports it to sample posts from the database.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

DEFAULT_SEED = 0
SAMPLE_FILE = "sample_posts.jsonl"
MIN_TEXTS = 6
"""The fewest distinct texts a guarded export works with: a third (at least two) held out for
the accuracy guard, the rest to calibrate. The CLI refuses fewer before any export starts."""


def stratified_sample(texts: Sequence[str], n: int, seed: int = DEFAULT_SEED) -> list[str]:
    """`n` texts spread over the length distribution (all of them when there are no more).

    >>> texts = ["x" * i for i in range(1, 101)]
    >>> [len(t) for t in stratified_sample(texts, 4, seed=1)]
    [5, 44, 75, 78]
    """
    unique = sorted(dict.fromkeys(t for t in texts if t.strip()), key=lambda t: (len(t), t))
    return [unique[i] for i in stratified_indices(len(unique), n, seed)]


def stratified_indices(count: int, n: int, seed: int = DEFAULT_SEED) -> list[int]:
    """`n` of the indices 0..count-1 of a length-sorted list: cut it into `n` equal strata and
    pick one in each, seeded (every index when `n >= count`).

    >>> stratified_indices(10, 3, seed=0)
    [1, 6, 7]
    """
    if n >= count:
        return list(range(count))
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    bounds = [round(i * count / n) for i in range(n + 1)]
    return [rng.randrange(lo, hi) for lo, hi in itertools.pairwise(bounds)]


def split_holdout(
    texts: Sequence[str], held_out: int, seed: int = DEFAULT_SEED
) -> tuple[list[str], list[str]]:
    """(calibration, held out): `held_out` texts picked length-stratified, the rest calibrate.

    >>> calib, held = split_holdout([str(i) * i for i in range(1, 11)], 3)
    >>> len(calib), len(held), set(calib) & set(held)
    (7, 3, set())
    """
    ordered = sorted(dict.fromkeys(texts), key=lambda t: (len(t), t))
    if held_out >= len(ordered):
        raise ValueError(
            f"{len(ordered)} distinct texts cannot give {held_out} held-out ones and any "
            "calibration ones"
        )
    held = set(stratified_sample(ordered, held_out, seed))
    return [t for t in ordered if t not in held], [t for t in ordered if t in held]


def distinct_count(texts: Iterable[str]) -> int:
    """How many distinct texts that are not blank, as the samples count them.

    >>> distinct_count(["a", "a", " ", "b"])
    2
    """
    return len({t for t in texts if t.strip()})


def read_texts(path: Path) -> list[str]:
    """Texts from a file: JSON lines with a "text" key, or one plain text per line."""
    return list(_parse(path.read_text(encoding="utf-8").splitlines(), str(path)))


def default_texts() -> list[str]:
    """The shipped sample posts, used when no posts of one's own are given."""
    lines = resources.files("volfefe.child").joinpath("data", SAMPLE_FILE).read_text("utf-8")
    return list(_parse(lines.splitlines(), SAMPLE_FILE))


def _parse(lines: Iterable[str], source: str) -> Iterable[str]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                text = json.loads(line)["text"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{source}:{number}: not a JSON object with a text") from exc
            if not isinstance(text, str):
                raise ValueError(f"{source}:{number}: text must be a string")
            yield text
        else:
            yield line
