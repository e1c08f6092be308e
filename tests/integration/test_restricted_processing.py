"""Restricted processing enforced (issue 11, item 2; PIPL 47 para 2, agreement 4.1.2): a
restricted subject's contact is not revealed except to an auditor or regulator citing a legal
basis, recorded with the read; a purpose that ended restricts only the orders it ended for;
a restricted subject is not used for linkage or limits (its purchases do not count on others'
linkage counters, its new order counts on its account alone). Both backends, through the
service layer and over HTTP, with a moved clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.contact_reads import reveal_contact
from ledger.domain.context import Actor
from ledger.domain.errors import LedgerError
from ledger.domain.personal_data import PersonalDataRead
from ledger.erasure import ErasureRetentionRequired
from ledger.retention_run import run_retention
from tests import builders as b
from tests.fix_api import Api
from tests.integration.test_api_commands import assert_problem
from tests.integration.test_api_queries import ledger_on
from tests.integration.test_erasure import erase
from tests.integration.test_retention import completed_unpaid
from tests.integration.test_returns import complete
from tests.integration.test_shredding import LIMITED_SKU, limited

SERVICE = Actor("0a0a0a0a0a0a", "service")
AUDITOR = Actor("0b0b0b0b0b0b", "auditor")
COURT = ("judicial_order", "COURT-2026-17")


def restricted_by_deferred_erasure(ledger: Ledger) -> None:
    completed_unpaid(ledger, "O-1")
    with pytest.raises(ErasureRetentionRequired):
        ledger.execute(erase())


def refused_read(ledger: Ledger, order_no: str, actor: Actor, **cited: tuple[str, str]) -> None:
    head = ledger.head_position()
    with pytest.raises(LedgerError) as caught:
        reveal_contact(ledger, order_no, actor, cited.get("cited"))
    assert (caught.value.code, caught.value.clause) == ("PROCESSING_RESTRICTED", "PIPL 47 para 2")
    assert "acct-1" not in caught.value.message
    assert ledger.head_position() == head  # nothing revealed, nothing recorded


def reads(ledger: Ledger) -> list[PersonalDataRead]:
    topic = PersonalDataRead.TOPIC  # type: ignore[attr-defined]
    found = ledger.app.recorder.select_notifications(1, 100, topics=[topic])
    return [ledger.app.mapper.to_domain_event(n) for n in found]  # type: ignore[misc]


def test_a_restricted_subject_is_read_only_by_an_auditor_citing_a_legal_basis(
    ledger_app: Ledger,
) -> None:
    restricted_by_deferred_erasure(ledger_app)

    refused_read(ledger_app, "O-1", SERVICE)
    refused_read(ledger_app, "O-1", AUDITOR)
    refused_read(ledger_app, "O-1", SERVICE, cited=COURT)  # a service cannot cite one
    revealed = reveal_contact(ledger_app, "O-1", AUDITOR, COURT)

    assert revealed.recorded and "[erased]" not in revealed.contact.values()
    [read] = reads(ledger_app)
    assert (read.legal_basis, read.reference, read.order_no) == (*COURT, "O-1")


def test_the_restriction_ends_with_the_retention(ledger_app: Ledger, clock: ManualClock) -> None:
    restricted_by_deferred_erasure(ledger_app)
    subject_until = ledger_app.order("O-1").retain_until
    assert subject_until is not None
    clock.set(subject_until + timedelta(seconds=1))

    assert reveal_contact(ledger_app, "O-1", SERVICE).contact  # no longer restricted


def test_an_ended_purpose_restricts_the_completed_orders_not_a_new_one(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    completed_unpaid(ledger_app, "O-1")
    run_retention(ledger_app)  # de-identified; restricted: purpose_ended
    clock.advance(timedelta(days=1))
    ledger_app.execute(b.submit("O-2"))  # a new purpose

    refused_read(ledger_app, "O-1", SERVICE)
    assert "[erased]" not in reveal_contact(ledger_app, "O-2", SERVICE).contact.values()


def test_an_unrestricted_read_records_no_basis(ledger_app: Ledger) -> None:
    ledger_app.execute(b.submit("O-1"))
    reveal_contact(ledger_app, "O-1", AUDITOR)
    [read] = reads(ledger_app)
    assert (read.legal_basis, read.reference) == (None, None)


def test_a_v1_read_without_a_basis_still_loads() -> None:
    state = {"subject_id": "acct-1", "order_no": "O-1", "fields": ["phone"]}
    PersonalDataRead.upcast_v1_v2(state)
    assert state["legal_basis"] is None and state["reference"] is None


# -- over HTTP --------------------------------------------------------------------------------
CONTACT = "/v1/orders/H1/contact"


def test_the_contact_route_refuses_a_restricted_subject_unless_a_basis_is_cited(
    api: Api,
) -> None:
    api.command(b.submit("H1"))
    api.command(b.order_cmd("cancel_order", "H1"))
    api.command(complete("H1"))
    deferred = api.post("/v1/subjects/acct-1/erasure", {}, role="admin", key="erase-1")
    assert_problem(deferred, 409, "RETENTION_REQUIRED")

    assert_problem(api.get(CONTACT, role="service"), 409, "PROCESSING_RESTRICTED")
    assert_problem(api.get(CONTACT, role="auditor"), 409, "PROCESSING_RESTRICTED")
    half = api.get(CONTACT, role="auditor", legal_basis="judicial_order")
    assert_problem(half, 400, "INVALID_PARAMETER")
    cited = api.get(CONTACT, role="auditor", legal_basis="judicial_order", reference="COURT-1")

    assert cited.status_code == 200, cited.text
    assert cited.json()["item"]["recorded"] is True
    with ledger_on(api) as ledger:
        [read] = reads(ledger)
    assert (read.legal_basis, read.reference) == ("judicial_order", "COURT-1")


# -- not used for linkage or limits (PIPL 47 para 2; 3.1.5) -------------------------------------
def _limit_one_per_30_days(ledger: Ledger) -> None:
    rule = {"sku": LIMITED_SKU, "limit_qty": 1, "period_days": 30}
    rule["valid_from"] = ledger.clock.now().isoformat()
    ledger.execute({"type": "define_purchase_limit", "command_id": b.cid("rule"), **rule})


def _refused_over_limit(ledger: Ledger, command: dict[str, Any]) -> None:
    with pytest.raises(LedgerError) as caught:
        ledger.execute(command)
    assert caught.value.code == "PURCHASE_LIMIT_EXCEEDED"


def test_a_subject_restricted_after_buying_no_longer_links_others_to_its_purchase(
    ledger_app: Ledger,
) -> None:
    """acct-x buys the limited phone, then its account is cancelled while a retention runs:
    from then on acct-y, sharing only its phone, may buy; acct-z and acct-w still link."""
    completed_unpaid(ledger_app, "X-0", account_no="acct-x")  # a retention runs
    _limit_one_per_30_days(ledger_app)
    ledger_app.execute(limited("X-1", "acct-x", "13700000000"))
    _refused_over_limit(ledger_app, limited("Y-0", "acct-y", "137 0000 0000"))

    ledger_app.execute(b.other("terminate_account", account_no="acct-x", ground="6.1(7)"))
    ledger_app.execute(limited("Y-1", "acct-y", "137 0000 0000"))

    ledger_app.execute(limited("Z-1", "acct-z", "13600000000"))
    _refused_over_limit(ledger_app, limited("W-1", "acct-w", "13600000000"))
    _refused_over_limit(ledger_app, limited("Y-2", "acct-y", "13500000000"))  # its own account


def test_a_restricted_subjects_new_order_counts_on_its_account_alone(
    ledger_app: Ledger,
) -> None:
    """acct-x's erasure waits for a retention (restricted, erasure_deferred): its new order is
    not linked by its phone, yet its account's own limit still holds."""
    completed_unpaid(ledger_app, "X-0", account_no="acct-x")
    with pytest.raises(ErasureRetentionRequired):
        ledger_app.execute(erase(subject_id="acct-x"))
    _limit_one_per_30_days(ledger_app)

    ledger_app.execute(limited("X-1", "acct-x", "13700000000"))
    ledger_app.execute(limited("Y-1", "acct-y", "13700000000"))  # not linked to acct-x
    _refused_over_limit(ledger_app, limited("X-2", "acct-x", "13800000000"))
    _refused_over_limit(ledger_app, limited("V-1", "acct-v", "13700000000"))  # acct-y's
