"""The untimed preparation before a CLI row: the children's model made once, the schema
migrated, the corpus imported."""

from __future__ import annotations

import time
from collections.abc import Mapping

from ...harness.corpus import write_posts
from ...harness.process import volfefe
from .results import Plan


def prepare_model(plan: Plan, env: Mapping[str, str]) -> float:
    """Seconds of one untimed `volfefe predict`: it makes whatever the children load once
    (with the ONNX backend, the cached export for this quantisation), so a row measures the
    steady state rather than a one-time export."""
    started = time.monotonic()
    volfefe(["predict", "Stocks rally as the trade deal is signed"], env, plan.timeout)
    return round(time.monotonic() - started, 3)


def prepare_database(plan: Plan, texts: list[str], env: Mapping[str, str], tag: str) -> None:
    """Create/migrate the schema and import the corpus."""
    volfefe(["db", "migrate"], env, plan.timeout)
    posts = write_posts(plan.workdir / f"posts-{tag}.jsonl", texts, tag)
    out = volfefe(["import", str(posts)], env, plan.timeout)
    if f"inserted {len(texts)}," not in out:
        raise RuntimeError(f"import did not insert {len(texts)} posts: {out.strip()}")
