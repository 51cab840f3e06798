"""Constants the docs quote are the code's: a page that states one states the value the code
declares, so changing the constant without the page fails here."""

from __future__ import annotations

import pytest

from tests.docs.examples import ROOT
from volfefe.chaos.harness import TARGET_WAIT, TICK
from volfefe.child.engine import PASS_COST_TOKENS
from volfefe.child.preempt import PAUSE_LIMIT
from volfefe.store.embedded import AUTHENTICATION_TIMEOUT
from volfefe.supervisor.latency import MEDIUM_TOKENS

QUOTES = [
    ("docs/architecture.md", f"`PAUSE_LIMIT` ({PAUSE_LIMIT * 1000:g} ms)"),
    ("docs/glossary.md", f"`PAUSE_LIMIT` ({PAUSE_LIMIT * 1000:g} ms)"),
    ("docs/architecture.md", f"over {MEDIUM_TOKENS} tokens, the medium class's bound"),
    ("docs/configuration.md", f"behind a call of long posts (over {MEDIUM_TOKENS} tokens)"),
    ("docs/deploying.md", f"`PASS_COST_TOKENS`, {PASS_COST_TOKENS},"),
    ("docs/chaos.md", f"each {TICK:g} s for {TARGET_WAIT:g} s"),
    ("docs/architecture.md", f"`authentication_timeout` is {AUTHENTICATION_TIMEOUT} s"),
]


@pytest.mark.parametrize(("page", "quote"), QUOTES, ids=[f"{p}:{q}" for p, q in QUOTES])
def test_the_page_quotes_the_constant_as_declared(page: str, quote: str) -> None:
    text = " ".join((ROOT / page).read_text(encoding="utf-8").split())
    assert quote in text, f"{page} no longer says {quote!r}: update the page or the constant"
