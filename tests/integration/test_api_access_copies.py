"""Access copies over HTTP (issue 11 item 9, PIPL 45): ``POST
/v1/subjects/{subject_id}/access-copies`` for admins only, answering the copy ``ledger
access`` writes (subject, orders, manifest), recorded as ``AccessCopyGiven``."""

from __future__ import annotations

import pytest

from ledger.domain.data_subject import AccessCopyGiven
from ledger.domain.ids import data_subject_id
from tests import builders as b
from tests.checks import events_of
from tests.fix_api import Api
from tests.integration.test_api_commands import assert_problem
from tests.integration.test_api_holds import admin_key_id
from tests.integration.test_api_queries import head, ledger_on

COPIES = "/v1/subjects/acct-1/access-copies"


@pytest.mark.parametrize("role", ["service", "auditor", "regulator"])
def test_only_admins_make_access_copies(api: Api, role: str) -> None:
    assert api.command(b.submit("A1")).status_code == 200
    before = head(api)
    assert_problem(api.post(COPIES, None, role=role, key="copy-1"), 403, "FORBIDDEN")
    assert head(api) == before


def test_an_admin_gets_the_copy_and_it_is_recorded(api: Api) -> None:
    assert api.command(b.submit("A1")).status_code == 200
    assert api.command(b.pay("A1")).status_code == 200

    answer = api.client.post(
        COPIES,
        params={"reference": "REQ-1"},
        headers={**api.auth("admin"), "Idempotency-Key": "copy-1"},
    )

    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    [order] = body["orders"]
    assert (order["order_no"], order["paid_yuan"]) == ("A1", "3999.00")
    assert order["contact"]["phone"] == b.CONTACT["phone"]
    assert body["manifest"]["subject_id"] == "acct-1"
    assert int(answer.headers["Ledger-Position"]) == body["recorded_at_position"] == head(api)
    with ledger_on(api) as ledger:
        [given] = events_of(ledger, data_subject_id("acct-1"), AccessCopyGiven)
    assert (given.reference, given.actor) == (
        "REQ-1",
        {"key_id": admin_key_id(api), "role": "admin"},
    )


def test_an_unknown_subject_and_a_missing_key_header_write_nothing(api: Api) -> None:
    before = head(api)
    missing = api.post("/v1/subjects/ghost-1/access-copies", None, role="admin", key="c-2")
    assert_problem(missing, 404, "NOT_FOUND")
    assert "ghost" not in missing.text
    assert_problem(api.post(COPIES, None, role="admin"), 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert head(api) == before
