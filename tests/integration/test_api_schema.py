"""The API against its own OpenAPI document (the API issue, "Done means"): for every
operation schemathesis generates requests from the document — ones that fit it and ones
that break it — and sends them to the real ASGI app on SQLite with a key of the role the
operation names (its ``apiKey`` scopes). No answer may be a 5xx; every answer must be one
the document lists, in its media type, headers and schema; a request that breaks the
document must be refused.

Bounded to stay in the default run: a few examples per operation and mode, no deadline (an
app's first request opens its ledger), derandomized so a run is the same run every time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import ApiSettings, create_app
from ledger.clock import ManualClock
from tests.fix_api import issue_keys

EXAMPLES = 10  # per operation and generation mode
# About four minutes of generated requests over every operation: the slow run's (``-m slow``);
# the default run keeps the hand-written bad-input tests (test_api_bad_input.py).
pytestmark = pytest.mark.slow
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
OPERATIONS = sorted(
    (method.upper(), path)
    for path, methods in create_app().openapi()["paths"].items()
    for method in methods
)


@pytest.fixture
def app_schema(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[Any, dict[str, str]]]:
    """The document of an app on a fresh SQLite ledger, the app attached (schemathesis runs
    its lifespan and ends it with the test), and a key per role."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    keys = issue_keys(url, clock)
    # A generated min_position beyond the log waits read_wait_s for nothing: kept short.
    app = create_app(ApiSettings(url=url, clock=clock, key_cache_s=60, read_wait_s=0.05))
    yield schemathesis.openapi.from_asgi("/openapi.json", app), keys


def auth_for(operation: Any, keys: dict[str, str]) -> dict[str, str]:
    """A key of the first role the operation's ``apiKey`` scopes name; none for a public one."""
    for requirement in operation.definition.raw.get("security", []):
        roles = requirement.get("apiKey")
        if roles:
            return {"Authorization": f"Bearer {keys[roles[0]]}"}
    return {}


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_answer_is_documented_and_none_is_a_server_error(
    app_schema: tuple[Any, dict[str, str]], method: str, path: str
) -> None:
    schema, keys = app_schema
    operation = schema[path][method]
    headers = auth_for(operation, keys)
    for mode in GenerationMode:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answered(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            answered()
        except Unsatisfiable:
            # Nothing of this operation can break its document (no parameters, or none
            # with a constraint): there is no invalid request to send.
            assert mode is GenerationMode.NEGATIVE
