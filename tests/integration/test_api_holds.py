"""Legal holds over HTTP (issue 11, item 8): ``POST /v1/subjects/{subject_id}/holds`` and
``…/holds/{reference}/release`` for admins only, as commands (Idempotency-Key, If-Match,
problems), and the subject's view and trail that show them."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.domain.data_subject import LegalHoldPlaced
from ledger.domain.ids import data_subject_id
from tests.checks import events_of
from tests.fix_api import Api
from tests.integration.test_api_commands import assert_problem
from tests.integration.test_api_queries import catch_up, head, ledger_on

HOLDS = "/v1/subjects/acct-1/holds"
CASE = {"reference": "CASE-1", "reason": "dispute"}


def release_path(reference: str = "CASE-1") -> str:
    return f"{HOLDS}/{reference}/release"


def admin_key_id(api: Api) -> str:
    return api.keys["admin"].split("_")[1]


@pytest.mark.parametrize("role", ["service", "auditor", "regulator"])
def test_only_admins_place_and_release_holds(api: Api, role: str) -> None:
    before = head(api)
    assert_problem(api.post(HOLDS, CASE, role=role, key="h-1"), 403, "FORBIDDEN")
    assert_problem(api.post(release_path(), {}, role=role, key="h-2"), 403, "FORBIDDEN")
    assert head(api) == before


def test_an_admin_places_a_hold_once_and_releases_it(api: Api) -> None:
    placed = api.post(HOLDS, CASE, role="admin", key="hold-1")
    assert placed.status_code == 200, placed.text
    body = placed.json()
    assert body["events"] == ["data-subject/Registered", "data-subject/LegalHoldPlaced"]
    assert placed.headers["ETag"] == '"2"'  # the subject stream's version
    replayed = api.post(HOLDS, CASE, role="admin", key="hold-1")
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.json() == body
    repeat = api.post(HOLDS, CASE, role="admin", key="hold-1-again")  # same facts, new key
    assert repeat.status_code == 200 and repeat.json()["position"] == body["position"]
    assert head(api) == body["position"]

    released = api.post(release_path(), None, role="admin", key="release-1")

    assert released.status_code == 200, released.text
    assert released.json()["events"] == ["data-subject/LegalHoldReleased"]
    with ledger_on(api) as ledger:
        [event] = events_of(ledger, data_subject_id("acct-1"), LegalHoldPlaced)
    assert event.actor == {"key_id": admin_key_id(api), "role": "admin"}


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "pointer"),
    [
        (HOLDS, {**CASE, "subject_id": "acct-2"}, 422, "INVALID_COMMAND", "/subject_id"),
        (HOLDS, {"reference": "CASE-1", "reason": "feud"}, 422, "INVALID_COMMAND", "/reason"),
        (HOLDS, {"reason": "dispute"}, 422, "INVALID_COMMAND", "/reference"),
        (release_path(), {"reference": "CASE-2"}, 422, "INVALID_COMMAND", "/reference"),
        ("/v1/subjects/13800000000%20x/holds", CASE, 400, "INVALID_PARAMETER", None),
        (release_path("CASE-2"), None, 404, "NOT_FOUND", None),
    ],
)
def test_bad_hold_requests_are_problems_that_name_the_field(
    api: Api, path: str, body: Any, status: int, code: str, pointer: str | None
) -> None:
    response = api.post(path, body, role="admin", key="bad-hold-1")
    problem = assert_problem(response, status, code)
    if pointer is not None:
        assert [e["pointer"] for e in problem["errors"]] == [pointer]
    assert "13800000000" not in response.text and "feud" not in response.text


def test_a_hold_needs_an_idempotency_key_and_honours_if_match(api: Api) -> None:
    before = head(api)
    missing = api.post(HOLDS, CASE, role="admin")
    assert_problem(missing, 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert api.post(HOLDS, CASE, role="admin", key="hold-1").status_code == 200
    stale = api.post(release_path(), None, role="admin", key="rel-1", headers={"If-Match": '"1"'})
    assert_problem(stale, 412, "PRECONDITION_FAILED")
    other = api.post(HOLDS, {**CASE, "reason": "investigation"}, role="admin", key="hold-2")
    assert_problem(other, 409, "LEGAL_HOLD_REFERENCE_REUSED")
    assert head(api) > before


def test_readers_see_the_hold_in_the_subjects_view_and_trail(api: Api) -> None:
    api.post(HOLDS, CASE, role="admin", key="hold-1")
    catch_up(api.url)

    view = api.get("/v1/subjects/acct-1/retention", role="auditor")
    steps = api.get("/v1/subjects/acct-1/retention-steps", role="auditor")

    assert view.status_code == steps.status_code == 200
    [held] = view.json()["item"]["holds"]
    admin = {"key_id": admin_key_id(api), "role": "admin"}
    assert (held["reference"], held["reason"], held["actor"]) == ("CASE-1", "dispute", admin)
    [step] = steps.json()["items"]
    assert (step["step"], step["basis"], step["reference"], step["actor"]) == (
        "hold_placed",
        "dispute",
        "CASE-1",
        admin,
    )
