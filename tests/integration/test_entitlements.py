"""F-codes and coupons (DOMAIN.md section 3, agreement 3.1.11), through the application.

Each code is used once; a cancel or any closure forfeits the order's codes in the same
command; only a coupon may come back, and only under a named rule (the agreement's special
rule exception speaks of coupons alone, so an F-code is never restored); a seven-day
no-reason return gives coupons back under 7D art. 15 unless the policy says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from ledger.application import CommandResult, Ledger, open_ledger
from ledger.clock import ManualClock
from ledger.domain.entitlement import EntitlementForfeited, EntitlementRestored
from ledger.domain.errors import LedgerError
from ledger.domain.ids import entitlement_id, order_id
from ledger.domain.order.events import ReturnInspected
from ledger.domain.policy import Policy
from tests import builders as b
from tests.checks import events_of, refused

FORFEITED = "entitlement/Forfeited"
RESTORED = "entitlement/Restored"


# -- helpers ---------------------------------------------------------------------------------
def request_return(order_no: str, kind: str, return_id: str = "r1") -> dict[str, Any]:
    return {
        **b.order_cmd("request_return", order_no, return_id=return_id),
        "kind": kind,
        "service_region": "CN-SH",
    }


def with_codes(ledger: Ledger, order_no: str, coupon: str, f_code: str, **over: Any) -> None:
    ledger.execute(b.issue(coupon))
    ledger.execute(b.issue(f_code, "f_code"))
    ledger.execute(b.submit(order_no, coupons=[coupon], f_codes=[f_code], **over))


def delivered_with_codes(ledger: Ledger, order_no: str, coupon: str, f_code: str) -> None:
    with_codes(ledger, order_no, coupon, f_code)
    ledger.execute(b.pay(order_no))
    ledger.execute(b.ship(order_no))
    ledger.execute(b.deliver(order_no))


def returned(ledger: Ledger, order_no: str, kind: str) -> CommandResult:
    ledger.execute(request_return(order_no, kind))
    ledger.execute(b.order_cmd("receive_return", order_no, return_id="r1"))
    return ledger.execute(b.order_cmd("inspect_return", order_no, return_id="r1"))


@pytest.fixture
def no_coupon_back_ledger(backend: str, clock: ManualClock) -> Iterator[Ledger]:
    ledger = open_ledger(
        backend, clock=clock, policy=Policy(coupons_restored_on_no_reason_return=False)
    )
    try:
        yield ledger
    finally:
        ledger.close()


# -- used once -------------------------------------------------------------------------------
def test_a_coupon_used_by_one_order_is_refused_for_a_second_order(ledger_app: Ledger) -> None:
    ledger_app.execute(b.issue("C-ONCE"))
    result = ledger_app.execute(b.submit("O-1", coupons=["C-ONCE"]))
    assert result.events == ["order/Submitted", "entitlement/Consumed"]

    refused(
        ledger_app, b.submit("O-2", coupons=["C-ONCE"]), "ENTITLEMENT_ALREADY_CONSUMED", "3.1.11"
    )


def test_an_f_code_used_by_one_order_is_refused_for_a_second_order(ledger_app: Ledger) -> None:
    ledger_app.execute(b.issue("F-ONCE", "f_code"))
    ledger_app.execute(b.submit("O-1", f_codes=["F-ONCE"]))

    refused(
        ledger_app, b.submit("O-2", f_codes=["F-ONCE"]), "ENTITLEMENT_ALREADY_CONSUMED", "3.1.11"
    )


def test_the_same_coupon_twice_in_one_order_is_refused(ledger_app: Ledger) -> None:
    ledger_app.execute(b.issue("C-TWICE"))

    refused(
        ledger_app,
        b.submit("O-1", coupons=["C-TWICE", "C-TWICE"]),
        "ENTITLEMENT_ALREADY_CONSUMED",
        "3.1.11",
    )


def test_an_f_code_for_another_sku_is_refused(ledger_app: Ledger) -> None:
    ledger_app.execute(b.issue("F-TV", "f_code", sku="TV-55"))

    refused(ledger_app, b.submit("O-1", f_codes=["F-TV"]), "F_CODE_WRONG_SKU", "3.1.11")
    # The right product with the same code is accepted: the refusal was about the SKU.
    result = ledger_app.execute(
        b.submit(
            "O-2",
            lines=[{"sku": "TV-55", "quantity": 1, "unit_price_fen": 299900}],
            f_codes=["F-TV"],
        )
    )
    assert "entitlement/Consumed" in result.events


def test_a_coupon_offered_as_an_f_code_is_refused(ledger_app: Ledger) -> None:
    ledger_app.execute(b.issue("C-KIND"))

    refused(ledger_app, b.submit("O-1", f_codes=["C-KIND"]), "ENTITLEMENT_NOT_FOUND", "3.1.11")


# -- forfeited on every cancel and closure ---------------------------------------------------
Step = Callable[[Ledger, ManualClock, str], CommandResult]


def _paid(ledger: Ledger, no: str) -> None:
    ledger.execute(b.pay(no))


def _shipped(ledger: Ledger, no: str) -> None:
    _paid(ledger, no)
    ledger.execute(b.ship(no))


def _user_cancel(ledger: Ledger, clock: ManualClock, no: str) -> CommandResult:
    return ledger.execute(b.order_cmd("cancel_order", no, reason="changed my mind"))


def _payment_deadline(ledger: Ledger, clock: ManualClock, no: str) -> CommandResult:
    clock.advance(timedelta(minutes=31))
    return ledger.execute(b.order_cmd("lapse_payment_deadline", no))


def _shortage_cancel(ledger: Ledger, clock: ManualClock, no: str) -> CommandResult:
    _paid(ledger, no)
    ledger.execute(b.order_cmd("declare_stock_shortage", no, skus=["PHONE-14"]))
    return ledger.execute(b.order_cmd("cancel_order", no))


def _shortage_refund(ledger: Ledger, clock: ManualClock, no: str) -> CommandResult:
    _paid(ledger, no)
    ledger.execute(b.order_cmd("declare_stock_shortage", no, skus=["PHONE-14"]))
    return ledger.execute(b.order_cmd("resolve_stock_shortage", no, resolution="refund"))


def _mutual_termination(ledger: Ledger, clock: ManualClock, no: str) -> CommandResult:
    _paid(ledger, no)
    ledger.execute(b.order_cmd("request_mutual_termination", no, requested_by="user"))
    return ledger.execute(b.order_cmd("accept_mutual_termination", no))


def _price_error(ledger: Ledger, clock: ManualClock, no: str) -> CommandResult:
    _paid(ledger, no)
    ledger.execute(
        b.order_cmd(
            "detect_price_error",
            no,
            sku="PHONE-14",
            displayed_price_fen=399900,
            correct_price_fen=499900,
            cause="price table typo",
        )
    )
    return ledger.execute(
        b.order_cmd("resolve_price_error", no, resolution="terminated", user_consented=True)
    )


def _purchase_limit(ledger: Ledger, clock: ManualClock, no: str) -> CommandResult:
    evidence = {"orders": [no, "O-ELSEWHERE"]}
    return ledger.execute(
        b.order_cmd("close_order", no, ground="purchase_limit", evidence=evidence)
    )


def _abnormal(ledger: Ledger, clock: ManualClock, no: str) -> CommandResult:
    ledger.execute(
        b.order_cmd(
            "raise_flag",
            no,
            flag_id="flag-1",
            criterion=2,
            evidence={"signals": ["same-address"]},
            automated=False,
        )
    )
    return ledger.execute(
        b.order_cmd("close_order", no, ground="abnormal_order", evidence={"flag_id": "flag-1"})
    )


def _after_failure(reason: str) -> Step:
    def run(ledger: Ledger, clock: ManualClock, no: str) -> CommandResult:
        _shipped(ledger, no)
        ledger.execute(b.order_cmd("record_delivery_failure", no, reason=reason))
        return ledger.execute(b.order_cmd("close_order", no, ground=reason))

    return run


def _no_answer(ledger: Ledger, clock: ManualClock, no: str) -> CommandResult:
    _shipped(ledger, no)
    for _ in range(2):
        ledger.execute(b.order_cmd("record_contact_call", no, answered=False))
    return ledger.execute(b.order_cmd("close_order", no, ground="no_answer"))


def _refused_delivery(ledger: Ledger, clock: ManualClock, no: str) -> CommandResult:
    _shipped(ledger, no)
    ledger.execute(b.order_cmd("refuse_delivery", no, quality_reason=False))
    return ledger.execute(b.order_cmd("close_order", no, ground="delivery_refused"))


def _account(verb: str, ground: str) -> Step:
    def run(ledger: Ledger, clock: ManualClock, no: str) -> CommandResult:
        _paid(ledger, no)
        account = ledger.order(no).account_no
        ledger.execute(b.other(verb, account_no=account, ground="6.1(3)"))
        ledger.execute(
            b.other("decide_open_order", account_no=account, order_no=no, disposition="close")
        )
        return ledger.execute(b.order_cmd("close_order", no, ground=ground))

    return run


CLOSURE_PATHS: dict[str, tuple[Step, str]] = {
    "user_cancel": (_user_cancel, "user_cancel"),
    "payment_deadline": (_payment_deadline, "payment_deadline"),
    "shortage_cancel": (_shortage_cancel, "stock_shortage"),
    "shortage_refund": (_shortage_refund, "stock_shortage"),
    "mutual_termination": (_mutual_termination, "mutual_termination"),
    "price_error_terminated": (_price_error, "price_error_terminated"),
    "purchase_limit": (_purchase_limit, "purchase_limit"),
    "abnormal_order": (_abnormal, "abnormal_order"),
    "bad_address": (_after_failure("bad_address"), "bad_address"),
    "nobody_to_sign": (_after_failure("nobody_to_sign"), "nobody_to_sign"),
    "force_majeure": (_after_failure("force_majeure"), "force_majeure"),
    "no_answer": (_no_answer, "no_answer"),
    "delivery_refused": (_refused_delivery, "delivery_refused"),
    "account_restricted": (
        _account("restrict_account", "account_restricted"),
        "account_restricted",
    ),
    "account_terminated": (
        _account("terminate_account", "account_terminated"),
        "account_terminated",
    ),
}


@pytest.mark.parametrize("path", list(CLOSURE_PATHS))
def test_every_cancel_and_closure_forfeits_the_codes_in_the_same_command(
    ledger_app: Ledger, clock: ManualClock, path: str
) -> None:
    step, ground = CLOSURE_PATHS[path]
    with_codes(ledger_app, "O-1", "C-1", "F-1")

    result = step(ledger_app, clock, "O-1")

    assert "order/Closed" in result.events
    assert result.events.count(FORFEITED) == 2, result.events
    assert ledger_app.order("O-1").closed_ground == ground
    for code in ("C-1", "F-1"):
        [forfeit] = events_of(ledger_app, entitlement_id(code), EntitlementForfeited)
        assert (forfeit.order_no, forfeit.ground) == ("O-1", ground)
        assert forfeit.command_id == result.command_id
    # Still consumed: a new order (another account, to rule out a holder check) is refused.
    for field, code in (("coupons", "C-1"), ("f_codes", "F-1")):
        refused(
            ledger_app,
            b.submit(f"O-again-{field}", account_no="acct-other", **{field: [code]}),
            "ENTITLEMENT_ALREADY_CONSUMED",
            "3.1.11",
        )


def test_a_closed_order_without_codes_forfeits_nothing(ledger_app: Ledger) -> None:
    ledger_app.execute(b.submit("O-1"))

    result = ledger_app.execute(b.order_cmd("cancel_order", "O-1"))

    assert "order/Closed" in result.events
    assert FORFEITED not in result.events


# -- restore -----------------------------------------------------------------------------------
def test_a_forfeited_coupon_comes_back_only_under_a_named_rule(ledger_app: Ledger) -> None:
    with_codes(ledger_app, "O-1", "C-1", "F-1")
    ledger_app.execute(b.order_cmd("cancel_order", "O-1"))

    for blank in ("", "   "):
        refused(
            ledger_app,
            b.other("restore_entitlement", code="C-1", rule=blank),
            "RESTORE_RULE_REQUIRED",
            "3.1.11",
        )
    result = ledger_app.execute(
        b.other("restore_entitlement", code="C-1", rule="mall coupon rule 7.2")
    )

    assert result.events == [RESTORED]
    [restored] = events_of(ledger_app, entitlement_id("C-1"), EntitlementRestored)
    assert restored.order_no == "O-1"
    assert ledger_app.reveal(restored.rule, "rule", "O-1") == "mall coupon rule 7.2"
    assert "entitlement/Consumed" in ledger_app.execute(b.submit("O-2", coupons=["C-1"])).events


def test_a_forfeited_f_code_is_never_restored_even_under_a_named_rule(
    ledger_app: Ledger,
) -> None:
    """The agreement's special-rule exception covers coupons only (departs from DOMAIN.md)."""
    with_codes(ledger_app, "O-1", "C-1", "F-1")
    ledger_app.execute(b.order_cmd("cancel_order", "O-1"))

    refused(
        ledger_app,
        b.other("restore_entitlement", code="F-1", rule="mall coupon rule 7.2"),
        "F_CODE_NOT_RESTORABLE",
        "3.1.11",
    )
    refused(ledger_app, b.submit("O-2", f_codes=["F-1"]), "ENTITLEMENT_ALREADY_CONSUMED", "3.1.11")


def test_an_unused_coupon_cannot_be_restored(ledger_app: Ledger) -> None:
    ledger_app.execute(b.issue("C-NEW"))

    refused(
        ledger_app,
        b.other("restore_entitlement", code="C-NEW", rule="mall coupon rule 7.2"),
        "ENTITLEMENT_NOT_CONSUMED",
        "3.1.11",
    )


def test_a_coupon_of_a_live_order_cannot_be_restored(ledger_app: Ledger) -> None:
    ledger_app.execute(b.issue("C-LIVE"))
    ledger_app.execute(b.submit("O-1", coupons=["C-LIVE"]))
    ledger_app.execute(b.pay("O-1"))
    head = ledger_app.head_position()

    with pytest.raises(LedgerError) as caught:
        ledger_app.execute(b.other("restore_entitlement", code="C-LIVE", rule="mall rule 7.2"))

    assert caught.value.clause == "3.1.11"
    assert ledger_app.head_position() == head


# -- seven-day no-reason return (7D art. 15) ---------------------------------------------------
def test_a_no_reason_return_restores_coupons_under_7d_art_15_by_default(
    ledger_app: Ledger,
) -> None:
    delivered_with_codes(ledger_app, "O-1", "C-1", "F-1")

    result = returned(ledger_app, "O-1", "no_reason")

    assert result.events.count(RESTORED) == 1, "the coupon only, never the F-code"
    [inspected] = events_of(ledger_app, order_id("O-1"), ReturnInspected)
    assert inspected.coupon_policy == "restored (7D art. 15)"
    [restored] = events_of(ledger_app, entitlement_id("C-1"), EntitlementRestored)
    assert (restored.rule, restored.order_no) == ("7D art. 15", "O-1")
    assert events_of(ledger_app, entitlement_id("F-1"), EntitlementRestored) == []
    assert "entitlement/Consumed" in ledger_app.execute(b.submit("O-2", coupons=["C-1"])).events
    refused(ledger_app, b.submit("O-3", f_codes=["F-1"]), "ENTITLEMENT_ALREADY_CONSUMED", "3.1.11")


def test_a_no_reason_return_keeps_coupons_consumed_when_the_policy_says_so(
    no_coupon_back_ledger: Ledger,
) -> None:
    ledger = no_coupon_back_ledger
    delivered_with_codes(ledger, "O-1", "C-1", "F-1")

    result = returned(ledger, "O-1", "no_reason")

    assert RESTORED not in result.events
    [inspected] = events_of(ledger, order_id("O-1"), ReturnInspected)
    assert inspected.coupon_policy == "kept"
    refused(ledger, b.submit("O-2", coupons=["C-1"]), "ENTITLEMENT_ALREADY_CONSUMED", "3.1.11")


def test_a_quality_return_leaves_coupons_consumed_and_says_the_policy_did_not_apply(
    ledger_app: Ledger,
) -> None:
    delivered_with_codes(ledger_app, "O-1", "C-1", "F-1")

    result = returned(ledger_app, "O-1", "quality")

    assert RESTORED not in result.events
    [inspected] = events_of(ledger_app, order_id("O-1"), ReturnInspected)
    assert inspected.coupon_policy == "not applicable"
    refused(ledger_app, b.submit("O-2", coupons=["C-1"]), "ENTITLEMENT_ALREADY_CONSUMED", "3.1.11")
