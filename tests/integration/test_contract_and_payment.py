"""DOMAIN.md section 1: contract formation and payment (3.1.2, 3.1.3), refunds (3.1.4),
closure after full payment (ECL 49 para 2). Each rule: the allowed path and the refused one,
on SQLite and PostgreSQL through ``ledger_app``. A refusal must raise the right
``RuleViolation`` (code and clause) and write nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.domain.errors import RuleViolation
from ledger.domain.order import events as ev
from tests import builders as b
from tests.checks import only, refunds_by_method, refused, run, stream

PRICE = 399900  # fen; the builders' default line: one PHONE-14
ALIPAY_PART = 100000
WECHAT_PART = PRICE - ALIPAY_PART
DEADLINE = timedelta(minutes=30)  # Policy.payment_deadline_min default

CLAIMED = "payment-id/Claimed"  # a payment takes its provider id ledger-wide


# -- helpers ----------------------------------------------------------------------------------
def submitted(ledger: Ledger, order_no: str = "A1", **over: Any) -> str:
    run(ledger, b.submit(order_no, **over))
    return order_no


def paid_split(ledger: Ledger, order_no: str = "A1") -> str:
    """Submitted and paid in full by two methods: alipay then wechat."""
    submitted(ledger, order_no)
    run(ledger, b.pay(order_no, ALIPAY_PART, method="alipay"))
    run(ledger, b.pay(order_no, WECHAT_PART, method="wechat"))
    return order_no


def closed_by_mutual_termination(ledger: Ledger, order_no: str = "A1") -> str:
    paid_split(ledger, order_no)
    run(ledger, b.order_cmd("request_mutual_termination", order_no, requested_by="user"))
    run(ledger, b.order_cmd("accept_mutual_termination", order_no))
    return order_no


# -- 3.1.2 / 3.1.3: the contract forms on payment in full ---------------------------------------
def test_partial_payment_forms_no_contract(ledger_app: Ledger) -> None:
    submitted(ledger_app)
    result = run(ledger_app, b.pay("A1", ALIPAY_PART))
    assert result.events == [CLAIMED, "order/PaymentReceived"]
    order = ledger_app.order("A1")
    assert not order.contract_formed
    assert order.paid_fen == {"alipay": ALIPAY_PART}
    assert order.status == "awaiting_payment"


def test_payment_in_full_at_once_forms_the_contract(ledger_app: Ledger) -> None:
    submitted(ledger_app)
    result = run(ledger_app, b.pay("A1", PRICE))
    assert result.events == [CLAIMED, "order/PaymentReceived", "order/ContractFormed"]
    assert only(stream(ledger_app, "A1"), ev.ContractFormed).paid_total_fen == PRICE
    assert ledger_app.order("A1").contract_formed


def test_the_payment_completing_a_split_payment_forms_the_contract(ledger_app: Ledger) -> None:
    submitted(ledger_app)
    run(ledger_app, b.pay("A1", ALIPAY_PART, method="alipay"))
    result = run(ledger_app, b.pay("A1", WECHAT_PART, method="wechat"))
    assert result.events == [CLAIMED, "order/PaymentReceived", "order/ContractFormed"]
    order = ledger_app.order("A1")
    assert order.contract_formed
    assert order.paid_fen == {"alipay": ALIPAY_PART, "wechat": WECHAT_PART}


def test_payment_just_before_the_deadline_is_accepted(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    submitted(ledger_app)
    clock.advance(DEADLINE - timedelta(seconds=1))
    assert run(ledger_app, b.pay("A1")).events[-1] == "order/ContractFormed"


def test_payment_at_the_deadline_instant_is_in_time_and_the_order_cannot_lapse(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    submitted(ledger_app)
    clock.advance(DEADLINE)
    refused(
        ledger_app,
        b.order_cmd("lapse_payment_deadline", "A1"),
        "DEADLINE_NOT_REACHED",
        "3.1.3",
    )
    assert run(ledger_app, b.pay("A1")).events[-1] == "order/ContractFormed"


def test_payment_after_the_deadline_is_refused(ledger_app: Ledger, clock: ManualClock) -> None:
    submitted(ledger_app)
    clock.advance(DEADLINE + timedelta(seconds=1))
    refused(ledger_app, b.pay("A1"), "PAYMENT_DEADLINE_PASSED", "3.1.3")
    assert not ledger_app.order("A1").contract_formed


def test_completing_a_partial_payment_after_the_deadline_is_refused(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    submitted(ledger_app)
    run(ledger_app, b.pay("A1", ALIPAY_PART))
    clock.advance(DEADLINE + timedelta(minutes=1))
    refused(ledger_app, b.pay("A1", WECHAT_PART), "PAYMENT_DEADLINE_PASSED", "3.1.3")


def test_overpayment_is_refused(ledger_app: Ledger) -> None:
    submitted(ledger_app)
    refused(ledger_app, b.pay("A1", PRICE + 1), "OVERPAYMENT", "3.1.3")


def test_paying_more_than_the_rest_due_is_refused(ledger_app: Ledger) -> None:
    submitted(ledger_app)
    run(ledger_app, b.pay("A1", ALIPAY_PART))
    refused(ledger_app, b.pay("A1", WECHAT_PART + 1, method="wechat"), "OVERPAYMENT", "3.1.3")
    assert ledger_app.order("A1").paid_total_fen == ALIPAY_PART


def test_paying_an_order_already_paid_in_full_is_refused(ledger_app: Ledger) -> None:
    paid_split(ledger_app)
    refused(ledger_app, b.pay("A1", 1), "ALREADY_PAID", "3.1.2")


# -- 3.1.3: the payment deadline ------------------------------------------------------------
def test_lapse_before_the_deadline_is_refused(ledger_app: Ledger, clock: ManualClock) -> None:
    submitted(ledger_app)
    clock.advance(DEADLINE - timedelta(seconds=1))
    refused(
        ledger_app,
        b.order_cmd("lapse_payment_deadline", "A1"),
        "DEADLINE_NOT_REACHED",
        "3.1.3",
    )
    assert not ledger_app.order("A1").is_closed


def test_lapse_after_the_deadline_closes_the_order_on_ground_payment_deadline(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    submitted(ledger_app)
    clock.advance(DEADLINE + timedelta(seconds=1))
    result = run(ledger_app, b.order_cmd("lapse_payment_deadline", "A1"))
    assert result.events == [
        "order/PaymentDeadlineLapsed",
        "order/Closed",
        "order/UserNotified",
    ]
    closed = only(stream(ledger_app, "A1"), ev.OrderClosed)
    assert (closed.ground, closed.clause, closed.contract_formed) == (
        "payment_deadline",
        "3.1.3",
        False,
    )
    order = ledger_app.order("A1")
    assert order.is_closed and not order.contract_formed


def test_lapse_after_a_partial_payment_refunds_the_part_paid(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    submitted(ledger_app)
    run(ledger_app, b.pay("A1", ALIPAY_PART))
    clock.advance(DEADLINE + timedelta(minutes=5))
    result = run(ledger_app, b.order_cmd("lapse_payment_deadline", "A1"))
    assert "order/RefundInitiated" in result.events
    events = stream(ledger_app, "A1")
    assert only(events, ev.OrderClosed).contract_formed is False
    assert refunds_by_method(events) == {"alipay": ALIPAY_PART}


def test_lapse_of_an_order_paid_in_time_is_refused(ledger_app: Ledger, clock: ManualClock) -> None:
    paid_split(ledger_app)
    clock.advance(DEADLINE + timedelta(hours=1))
    refused(
        ledger_app,
        b.order_cmd("lapse_payment_deadline", "A1"),
        "CONTRACT_ALREADY_FORMED",
        "3.1.3",
    )


# -- 3.1.2: cancel before formation, mutual termination after --------------------------------
def test_cancel_before_payment_is_allowed(ledger_app: Ledger) -> None:
    submitted(ledger_app)
    result = run(ledger_app, b.order_cmd("cancel_order", "A1", reason="changed my mind"))
    assert result.events == ["order/CancelledByUser", "order/Closed", "order/UserNotified"]
    closed = only(stream(ledger_app, "A1"), ev.OrderClosed)
    assert (closed.ground, closed.clause, closed.contract_formed) == ("user_cancel", "3.1.2", False)


def test_cancel_after_a_partial_payment_is_allowed_and_refunds_it(ledger_app: Ledger) -> None:
    submitted(ledger_app)
    run(ledger_app, b.pay("A1", ALIPAY_PART))
    run(ledger_app, b.order_cmd("cancel_order", "A1"))
    events = stream(ledger_app, "A1")
    assert only(events, ev.OrderClosed).contract_formed is False
    assert refunds_by_method(events) == {"alipay": ALIPAY_PART}


def test_cancel_after_payment_is_refused(ledger_app: Ledger) -> None:
    paid_split(ledger_app)
    refused(ledger_app, b.order_cmd("cancel_order", "A1"), "CONTRACT_ALREADY_FORMED", "3.1.2")
    assert not ledger_app.order("A1").is_closed


def test_termination_request_before_formation_is_refused(ledger_app: Ledger) -> None:
    submitted(ledger_app)
    refused(
        ledger_app,
        b.order_cmd("request_mutual_termination", "A1", requested_by="user"),
        "CONTRACT_NOT_FORMED",
        "3.1.2",
    )


def test_accepted_mutual_termination_refunds_each_method_and_notifies_the_user(
    ledger_app: Ledger,
) -> None:
    paid_split(ledger_app)
    requested = run(
        ledger_app, b.order_cmd("request_mutual_termination", "A1", requested_by="user")
    )
    assert requested.events == ["order/MutualTerminationRequested"]
    accepted = run(ledger_app, b.order_cmd("accept_mutual_termination", "A1"))
    assert accepted.events == [
        "order/MutualTerminationAccepted",
        "order/Closed",
        "order/RefundInitiated",
        "order/RefundInitiated",
        "order/UserNotified",
    ]
    events = stream(ledger_app, "A1")
    closed = only(events, ev.OrderClosed)
    assert (closed.ground, closed.clause, closed.contract_formed) == (
        "mutual_termination",
        "3.1.2",
        True,
    )
    assert refunds_by_method(events) == {"alipay": ALIPAY_PART, "wechat": WECHAT_PART}
    assert {e.destination for e in events if isinstance(e, ev.RefundInitiated)} == {"original"}
    notice = only(events, ev.UserNotified)
    assert notice.clause == "3.1.2"


def test_declined_mutual_termination_leaves_the_order_open_and_shippable(
    ledger_app: Ledger,
) -> None:
    paid_split(ledger_app)
    run(ledger_app, b.order_cmd("request_mutual_termination", "A1", requested_by="user"))
    result = run(ledger_app, b.order_cmd("decline_mutual_termination", "A1", reason="packed"))
    assert result.events == ["order/MutualTerminationDeclined"]
    order = ledger_app.order("A1")
    assert not order.is_closed and not order.termination_requested
    refused(
        ledger_app,
        b.order_cmd("accept_mutual_termination", "A1"),
        "TERMINATION_NOT_REQUESTED",
        "3.1.2",
    )
    assert run(ledger_app, b.ship("A1")).events == ["order/Shipped"]


def test_accepting_a_termination_nobody_requested_is_refused(ledger_app: Ledger) -> None:
    paid_split(ledger_app)
    refused(
        ledger_app,
        b.order_cmd("accept_mutual_termination", "A1"),
        "TERMINATION_NOT_REQUESTED",
        "3.1.2",
    )


def test_a_second_open_termination_request_is_refused(ledger_app: Ledger) -> None:
    paid_split(ledger_app)
    run(ledger_app, b.order_cmd("request_mutual_termination", "A1", requested_by="user"))
    refused(
        ledger_app,
        b.order_cmd("request_mutual_termination", "A1", requested_by="seller"),
        "TERMINATION_ALREADY_REQUESTED",
        "3.1.2",
    )


def test_termination_request_after_delivery_is_refused(ledger_app: Ledger) -> None:
    paid_split(ledger_app)
    run(ledger_app, b.ship("A1"))
    run(ledger_app, b.deliver("A1"))
    refused(
        ledger_app,
        b.order_cmd("request_mutual_termination", "A1", requested_by="user"),
        "ALREADY_DELIVERED",
        "3.1.2",
    )


# -- ECL 49 para 2: a closure after full payment terminates a formed contract -----------------
def test_closure_after_full_payment_terminates_the_contract_with_a_refund_per_method(
    ledger_app: Ledger,
) -> None:
    paid_split(ledger_app)
    result = run(
        ledger_app,
        b.order_cmd("close_order", "A1", ground="purchase_limit", evidence={"orders": ["A0"]}),
    )
    assert result.events == [
        "order/Closed",
        "order/RefundInitiated",
        "order/RefundInitiated",
        "order/UserNotified",
    ]
    events = stream(ledger_app, "A1")
    closed = only(events, ev.OrderClosed)
    assert closed.contract_formed is True
    assert (closed.ground, closed.clause) == ("purchase_limit", "3.1.5")
    assert refunds_by_method(events) == {"alipay": ALIPAY_PART, "wechat": WECHAT_PART}
    assert only(events, ev.UserNotified).clause == "3.1.5"
    order = ledger_app.order("A1")
    for method, paid in order.paid_fen.items():
        assert order.pending_fen(method) == paid


def test_closure_before_any_payment_records_no_contract_and_no_refund(
    ledger_app: Ledger,
) -> None:
    submitted(ledger_app)
    result = run(
        ledger_app,
        b.order_cmd("close_order", "A1", ground="purchase_limit", evidence={"orders": ["A0"]}),
    )
    assert result.events == ["order/Closed", "order/UserNotified"]
    assert only(stream(ledger_app, "A1"), ev.OrderClosed).contract_formed is False


# -- 3.1.4 / 7D art. 14: refunds -----------------------------------------------------------
def test_refund_to_the_original_account_within_what_was_paid_is_allowed(
    ledger_app: Ledger,
) -> None:
    paid_split(ledger_app)
    result = run(
        ledger_app,
        b.order_cmd(
            "initiate_refund",
            "A1",
            purpose="price_adjustment",
            method="alipay",
            amount_fen=ALIPAY_PART,
        ),
    )
    assert result.events == ["order/RefundInitiated"]
    assert result.result == {"refund_id": "A1/R1"}
    refund = only(stream(ledger_app, "A1"), ev.RefundInitiated)
    assert (refund.method, refund.amount_fen, refund.destination) == (
        "alipay",
        ALIPAY_PART,
        "original",
    )


def test_refund_of_more_than_was_paid_by_that_method_is_refused(ledger_app: Ledger) -> None:
    paid_split(ledger_app)
    refused(
        ledger_app,
        b.order_cmd(
            "initiate_refund",
            "A1",
            purpose="price_adjustment",
            method="alipay",
            amount_fen=ALIPAY_PART + 1,
        ),
        "OVER_REFUND",
        "3.1.4",
    )


def test_refund_of_more_than_remains_after_earlier_refunds_is_refused(
    ledger_app: Ledger,
) -> None:
    paid_split(ledger_app)
    first = run(
        ledger_app,
        b.order_cmd(
            "initiate_refund", "A1", purpose="price_adjustment", method="wechat", amount_fen=1000
        ),
    )
    run(ledger_app, b.order_cmd("complete_refund", "A1", refund_id=first.result["refund_id"]))
    run(
        ledger_app,
        b.order_cmd(
            "initiate_refund", "A1", purpose="price_adjustment", method="wechat", amount_fen=2000
        ),
    )
    refused(
        ledger_app,
        b.order_cmd(
            "initiate_refund",
            "A1",
            purpose="price_adjustment",
            method="wechat",
            amount_fen=WECHAT_PART - 2999,
        ),
        "OVER_REFUND",
        "3.1.4",
    )
    run(
        ledger_app,
        b.order_cmd(
            "initiate_refund",
            "A1",
            purpose="price_adjustment",
            method="wechat",
            amount_fen=WECHAT_PART - 3000,
        ),
    )
    assert ledger_app.order("A1").refundable_fen("wechat") == 0


def test_refund_on_a_method_that_paid_nothing_is_refused(ledger_app: Ledger) -> None:
    paid_split(ledger_app)
    refused(
        ledger_app,
        b.order_cmd(
            "initiate_refund", "A1", purpose="price_adjustment", method="unionpay", amount_fen=1
        ),
        "OVER_REFUND",
        "3.1.4",
    )


def test_refund_to_another_destination_without_a_recorded_consent_is_refused(
    ledger_app: Ledger,
) -> None:
    paid_split(ledger_app)
    refused(
        ledger_app,
        b.order_cmd(
            "initiate_refund",
            "A1",
            purpose="price_adjustment",
            method="alipay",
            amount_fen=1000,
            consent_id="consent-1",
        ),
        "REFUND_DESTINATION_NOT_CONSENTED",
        "3.1.4",
    )


def test_refund_to_another_destination_with_a_recorded_consent_is_allowed(
    ledger_app: Ledger,
) -> None:
    paid_split(ledger_app)
    consent = run(
        ledger_app,
        b.order_cmd(
            "record_refund_consent",
            "A1",
            consent_id="consent-1",
            method="alipay",
            destination_account="6222 0000 1111 2222",
        ),
    )
    assert consent.events == ["order/RefundConsentRecorded"]
    recorded = only(stream(ledger_app, "A1"), ev.RefundConsentRecorded)
    assert "6222 0000 1111 2222" not in recorded.destination_account, "must be sealed"
    run(
        ledger_app,
        b.order_cmd(
            "initiate_refund",
            "A1",
            purpose="price_adjustment",
            method="alipay",
            amount_fen=1000,
            consent_id="consent-1",
        ),
    )
    refund = only(stream(ledger_app, "A1"), ev.RefundInitiated)
    assert (refund.destination, refund.consent_id) == ("consented", "consent-1")


def test_a_consent_for_one_method_does_not_redirect_a_refund_of_another(
    ledger_app: Ledger,
) -> None:
    paid_split(ledger_app)
    run(
        ledger_app,
        b.order_cmd(
            "record_refund_consent",
            "A1",
            consent_id="consent-w",
            method="wechat",
            destination_account="6222 0000 1111 2222",
        ),
    )
    refused(
        ledger_app,
        b.order_cmd(
            "initiate_refund",
            "A1",
            purpose="price_adjustment",
            method="alipay",
            amount_fen=1000,
            consent_id="consent-w",
        ),
        "REFUND_DESTINATION_NOT_CONSENTED",
        "3.1.4",
    )


def test_a_payment_refunded_before_formation_does_not_count_toward_it(
    ledger_app: Ledger,
) -> None:
    submitted(ledger_app)
    run(ledger_app, b.pay("A1", ALIPAY_PART, method="alipay"))
    refund = run(
        ledger_app,
        b.order_cmd(
            "initiate_refund",
            "A1",
            purpose="payment_returned",
            method="alipay",
            amount_fen=ALIPAY_PART,
        ),
    )
    run(ledger_app, b.order_cmd("complete_refund", "A1", refund_id=refund.result["refund_id"]))
    rest = run(ledger_app, b.pay("A1", WECHAT_PART, method="wechat"))
    assert rest.events == [CLAIMED, "order/PaymentReceived"], (
        "formed with part of the price refunded"
    )
    refused(ledger_app, b.ship("A1"), "NOT_PAID", "3.1.3")


def test_completing_a_refund_moves_it_from_pending_to_refunded(ledger_app: Ledger) -> None:
    paid_split(ledger_app)
    started = run(
        ledger_app,
        b.order_cmd(
            "initiate_refund", "A1", purpose="price_adjustment", method="alipay", amount_fen=5000
        ),
    )
    refund_id = started.result["refund_id"]
    done = run(ledger_app, b.order_cmd("complete_refund", "A1", refund_id=refund_id))
    assert done.events == ["order/RefundCompleted"]
    order = ledger_app.order("A1")
    assert order.pending_refunds == {}
    assert order.refunded_fen == {"alipay": 5000}
    # The provider confirming it again (another command id) is a repeat: the first outcome.
    head = ledger_app.head_position()
    again = ledger_app.execute(b.order_cmd("complete_refund", "A1", refund_id=refund_id))
    assert again.duplicate and again.events == done.events
    assert ledger_app.head_position() == head
    assert ledger_app.order("A1").refunded_fen == {"alipay": 5000}


def test_completing_a_refund_that_was_never_started_is_refused(ledger_app: Ledger) -> None:
    paid_split(ledger_app)
    refused(
        ledger_app,
        b.order_cmd("complete_refund", "A1", refund_id="A1/R9"),
        "REFUND_NOT_PENDING",
        "3.1.4",
    )


# -- 3.1.3: pay before shipping -----------------------------------------------------------
def test_ship_before_payment_is_refused(ledger_app: Ledger) -> None:
    submitted(ledger_app)
    refused(ledger_app, b.ship("A1"), "NOT_PAID", "3.1.3")


def test_ship_after_a_partial_payment_is_refused(ledger_app: Ledger) -> None:
    submitted(ledger_app)
    run(ledger_app, b.pay("A1", ALIPAY_PART))
    refused(ledger_app, b.ship("A1"), "NOT_PAID", "3.1.3")


def test_ship_after_payment_in_full_is_allowed_once(ledger_app: Ledger) -> None:
    paid_split(ledger_app)
    assert run(ledger_app, b.ship("A1")).events == ["order/Shipped"]
    assert ledger_app.order("A1").shipped
    refused(ledger_app, b.ship("A1"), "ALREADY_SHIPPED", "3.2")


# -- a closed order takes no commercial command, but settles its refunds ------------------------
COMMERCIAL_COMMANDS = {
    "receive_payment": lambda: b.pay("A1", 1),
    "cancel_order": lambda: b.order_cmd("cancel_order", "A1"),
    "lapse_payment_deadline": lambda: b.order_cmd("lapse_payment_deadline", "A1"),
    "ship_order": lambda: b.ship("A1"),
    "request_mutual_termination": lambda: b.order_cmd(
        "request_mutual_termination", "A1", requested_by="user"
    ),
    "declare_stock_shortage": lambda: b.order_cmd(
        "declare_stock_shortage", "A1", skus=["PHONE-14"]
    ),
    "detect_price_error": lambda: b.order_cmd(
        "detect_price_error",
        "A1",
        sku="PHONE-14",
        displayed_price_fen=PRICE,
        correct_price_fen=PRICE + 1,
        cause="feed",
    ),
    "raise_flag": lambda: b.order_cmd(
        "raise_flag",
        "A1",
        flag_id="f1",
        criterion=2,
        evidence={"signals": ["address"]},
        automated=False,
    ),
    "close_order": lambda: b.order_cmd(
        "close_order", "A1", ground="purchase_limit", evidence={"orders": ["A0"]}
    ),
}


@pytest.mark.parametrize("command_type", sorted(COMMERCIAL_COMMANDS))
def test_a_closed_order_refuses_every_commercial_command(
    ledger_app: Ledger, command_type: str
) -> None:
    closed_by_mutual_termination(ledger_app)
    command = COMMERCIAL_COMMANDS[command_type]()
    assert command["type"] == command_type
    refused(ledger_app, command, "ORDER_CLOSED", "3.1.2")


def test_a_closed_order_refuses_a_further_refund(ledger_app: Ledger) -> None:
    closed_by_mutual_termination(ledger_app)
    refused(
        ledger_app,
        b.order_cmd(
            "initiate_refund", "A1", purpose="price_adjustment", method="alipay", amount_fen=1
        ),
        "OVER_REFUND",
        "3.1.4",
    )


def test_a_closed_order_refuses_a_refund_consent(ledger_app: Ledger) -> None:
    closed_by_mutual_termination(ledger_app)
    refused(
        ledger_app,
        b.order_cmd(
            "record_refund_consent",
            "A1",
            consent_id="late",
            method="alipay",
            destination_account="6222 0000 1111 2222",
        ),
        "ORDER_CLOSED",
        "3.1.2",
    )


def test_a_closed_order_still_completes_its_refunds_and_its_transaction(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    closed_by_mutual_termination(ledger_app)
    pending = dict(ledger_app.order("A1").pending_refunds)
    assert sorted(r["method"] for r in pending.values()) == ["alipay", "wechat"]
    refused(
        ledger_app,
        b.order_cmd("complete_transaction", "A1"),
        "TRANSACTION_NOT_COMPLETE",
        "ECL 31",
    )
    clock.advance(timedelta(days=1))
    for refund_id in sorted(pending):
        done = run(ledger_app, b.order_cmd("complete_refund", "A1", refund_id=refund_id))
        assert done.events == ["order/RefundCompleted"]
    order = ledger_app.order("A1")
    assert order.pending_refunds == {}
    assert order.refunded_fen == order.paid_fen == {"alipay": ALIPAY_PART, "wechat": WECHAT_PART}
    completed = run(ledger_app, b.order_cmd("complete_transaction", "A1"))
    # The order's completion, then its retention on the data subject's stream (ECL 31).
    assert completed.events == [
        "order/TransactionCompleted",
        "data-subject/Registered",
        "data-subject/RetentionScheduled",
    ]


def test_shipping_while_a_termination_request_is_open_is_refused(ledger_app: Ledger) -> None:
    """The seller answers the request first (3.1.2): accepting it after shipping would
    close and refund an order already on its way."""
    ledger_app.execute(b.submit("T1"))
    ledger_app.execute(b.pay("T1"))
    ledger_app.execute(b.order_cmd("request_mutual_termination", "T1", requested_by="user"))
    head = ledger_app.head_position()
    with pytest.raises(RuleViolation) as caught:
        ledger_app.execute(b.ship("T1"))
    assert (caught.value.code, caught.value.clause) == ("TERMINATION_PENDING", "3.1.2")
    assert ledger_app.head_position() == head
    ledger_app.execute(b.order_cmd("decline_mutual_termination", "T1"))
    assert ledger_app.execute(b.ship("T1")).events == ["order/Shipped"]
