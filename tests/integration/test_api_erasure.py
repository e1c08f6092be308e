"""Erasure over HTTP (issue 11, item 4): ``POST /v1/subjects/{subject_id}/erasure`` for admins
only, as a command (Idempotency-Key), answering a refusal or a deferral as its problem while
the request and its outcome stay recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.clock import ManualClock
from ledger.domain import data_subject as ds
from ledger.domain.ids import data_subject_id
from tests import builders as b
from tests.checks import events_of
from tests.fix_api import Api
from tests.integration.test_api_commands import assert_problem
from tests.integration.test_api_queries import catch_up, head, ledger_on
from tests.integration.test_returns import complete

ERASURE = "/v1/subjects/acct-1/erasure"
HOLDS = "/v1/subjects/acct-1/holds"


@pytest.mark.parametrize("role", ["service", "auditor", "regulator"])
def test_only_admins_erase(api: Api, role: str) -> None:
    before = head(api)
    assert_problem(api.post(ERASURE, {}, role=role, key="e-1"), 403, "FORBIDDEN")
    assert head(api) == before


def test_an_admin_erases_a_subject_and_a_retry_answers_the_same(
    api: Api, clock: ManualClock
) -> None:
    assert api.command(b.submit("H1")).status_code == 200
    api.command(b.order_cmd("cancel_order", "H1"))
    completed = api.command(complete("H1")).json()
    assert completed["events"], completed
    clock.advance(timedelta(days=3 * 366 + 1))  # past its retention

    erased = api.post(ERASURE, {"reference": "REQ-1"}, role="admin", key="erase-1")

    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["events"] == [
        "data-subject/ErasureRequested",
        "data-subject/SubjectErased",
    ]
    assert body["result"]["outcome"] == "erased"
    again = api.post(ERASURE, {"reference": "REQ-1"}, role="admin", key="erase-1")
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == body
    with ledger_on(api) as ledger:
        assert ledger.keystore.is_destroyed("acct-1")
    contact = api.get("/v1/orders/H1/contact", role="auditor")
    assert contact.status_code == 200, contact.text
    assert set(contact.json()["item"]["contact"].values()) == {"[erased]"}
    catch_up(api.url)
    order = api.get("/v1/orders/H1", role="service")
    assert order.status_code == 200 and order.json()["item"]["total_due_fen"] == 399900


def test_an_erasure_while_an_order_is_being_performed_is_409_order_in_progress(api: Api) -> None:
    api.command(b.submit("H1"))
    before = head(api)

    refused = api.post(ERASURE, {}, role="admin", key="erase-1")

    assert_problem(refused, 409, "ORDER_IN_PROGRESS")
    assert "H1" in refused.json()["detail"]
    assert head(api) > before  # the request and its refusal are in the log
    with ledger_on(api) as ledger:
        [event] = events_of(ledger, data_subject_id("acct-1"), ds.ErasureRefused)
        assert event.code == "ORDER_IN_PROGRESS"
        assert not ledger.keystore.is_destroyed("acct-1")


def test_an_erasure_under_a_hold_is_409_legal_hold_and_recorded(api: Api) -> None:
    api.command(b.submit("H1"))
    api.post(HOLDS, {"reference": "CASE-1", "reason": "dispute"}, role="admin", key="h-1")
    before = head(api)

    refused = api.post(ERASURE, {}, role="admin", key="erase-1")

    assert_problem(refused, 409, "LEGAL_HOLD")
    assert head(api) > before  # the request and its refusal are in the log
    with ledger_on(api) as ledger:
        [event] = events_of(ledger, data_subject_id("acct-1"), ds.ErasureRefused)
        assert event.references == ["CASE-1"]
        assert not ledger.keystore.is_destroyed("acct-1")
    assert_problem(api.post(ERASURE, {}, role="admin", key="erase-1"), 409, "LEGAL_HOLD")


def test_an_erasure_inside_the_retention_is_409_with_the_date_it_runs(
    api: Api, clock: ManualClock
) -> None:
    api.command(b.submit("H1"))
    api.command(b.order_cmd("cancel_order", "H1"))
    api.command(complete("H1"))

    deferred = api.post(ERASURE, {}, role="admin", key="erase-1")

    body = assert_problem(deferred, 409, "RETENTION_REQUIRED")
    assert body["clause"] == "ECL 31"
    with ledger_on(api) as ledger:
        [event] = events_of(ledger, data_subject_id("acct-1"), ds.ErasureDeferred)
        assert body["retain_until"] == event.until.isoformat()
        assert not ledger.keystore.is_destroyed("acct-1")
