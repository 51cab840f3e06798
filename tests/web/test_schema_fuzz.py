"""Schemathesis against volfefe's own OpenAPI description, on a real `serve` process.

Every operation of `/api/v1/openapi.json` (the event stream aside: it never ends) gets
`EXAMPLES` generated requests of valid data and as many of invalid data, with the token, so
the write routes are exercised too. Each response is checked by schemathesis: no 5xx, and a
status, content type and body the description allows. Hypothesis runs derandomized, without
its example database or shrinking, so a run is the same each time and bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from tests.conftest import ROOT
from tests.fixtures_db import fresh_database
from tests.web.conftest import TOKEN, Serve, Served
from volfefe.store.connect import connect
from volfefe.store.importer import import_posts
from volfefe.web.openapi import SPEC

pytestmark = pytest.mark.db

EXAMPLES = 20  # per operation and mode: about 350 requests, under 10 s each mode here
# Operations with rules across parameters that OpenAPI cannot state (a time range: since
# before until, range or since/until, a bounded number of buckets): valid-looking data may
# get its 422, so only the acceptance of valid data goes unchecked for them; tests/web
# checks those 422s by name.
CROSS_PARAMETER_RULES = {"GET /api/v1/index", "GET /api/v1/pipeline"}


@pytest.fixture(scope="module")
def fuzz_database_url(embedded_template: tuple[str, str]) -> Iterator[str]:
    """A migrated database with the sample posts, so ids and pages find rows."""
    admin_url, template = embedded_template
    with fresh_database(admin_url, template) as url:
        with connect(url) as conn:
            import_posts(conn, ROOT / "data" / "sample_posts.jsonl")
        yield url


@pytest.fixture(scope="module")
def server(serve: Serve, fuzz_database_url: str) -> Served:
    """One server with a token for this module."""
    return serve(fuzz_database_url, VOLFEFE_SINK_TIMEOUT="1")  # generated sinks' tests fail fast


def operations(server: Served) -> list[Any]:
    """The operations of the served description, the stream excepted."""
    schema = schemathesis.openapi.from_url(server.base_url + "/api/v1/openapi.json")
    subset = schema.exclude(path="/api/v1/stream")
    return [result.ok() for result in subset.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_its_description_says(
    server: Served, mode: GenerationMode
) -> None:
    found = operations(server)
    described = {
        f"{method.upper()} {path}" for path, ops in SPEC["paths"].items() for method in ops
    }
    assert {op.label for op in found} == described - {"GET /api/v1/stream"}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for operation in found:
        if mode is GenerationMode.NEGATIVE and not (
            operation.query or operation.path_parameters or operation.body
        ):
            continue  # nothing in the request can be made invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def answers(case: schemathesis.Case) -> None:
            excluded = (
                [positive_data_acceptance] if case.operation.label in CROSS_PARAMETER_RULES else []
            )
            case.call_and_validate(base_url=server.base_url, headers=auth, excluded_checks=excluded)

        answers()
