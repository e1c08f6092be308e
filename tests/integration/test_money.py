"""Issue 8, cases 1 and 2, on SQLite and PostgreSQL.

Case 1: an external id names one real-world thing. A provider's payment id counts once in
the whole ledger; a consent id, a tracking number, a refund, a return id and a flag id once
on their order. The same id with the same facts is a repeat: the first outcome comes back
(``duplicate``) and nothing is written. With other facts it is a typed refusal.

Case 2: the order's money is defined once (``OrderBase``: paid and refunds per method,
kept, due, outstanding) and every rule reads it: a refund says why (``purpose``) and what
is due follows; shipping and delivery need what is kept to cover what is due; nothing kept
ever exceeds what is due.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from ledger.application import CommandResult, Ledger
from ledger.clock import ManualClock
from ledger.domain.errors import Conflict, RuleViolation
from ledger.domain.ids import payment_claim_id
from ledger.domain.order import events as ev
from ledger.domain.payment_ids import PaymentIdClaimed
from tests import builders as b
from tests.checks import only, refused, run, stream
from tests.integration.test_concurrency import (
    WAIT_SECONDS,
    hold_saves_at,
    losers,
    race,
    two_ledgers,
    winners,
)

PHONE = {"sku": "PHONE-14", "quantity": 1, "unit_price_fen": 299900}
CASE = {"sku": "CASE-14", "quantity": 1, "unit_price_fen": 100000}
PRICE = 399900  # the builders' default order: one PHONE-14
PURPOSES = ("price_adjustment", "shortage", "termination", "payment_returned")


def repeated(ledger: Ledger, command: dict[str, Any], first: CommandResult) -> CommandResult:
    """``command`` repeats a fact: the first outcome comes back and nothing is written."""
    head = ledger.head_position()
    again = ledger.execute(command)
    assert again.duplicate, again
    assert (again.events, again.result) == (first.events, first.result)
    assert again.command_id == command["command_id"] != first.command_id
    assert ledger.head_position() == head, "a repeat wrote events"
    return again


def refund(order_no: str, amount_fen: int, purpose: str, **over: Any) -> dict[str, Any]:
    fields = {"method": "alipay", "amount_fen": amount_fen, "purpose": purpose, **over}
    return b.order_cmd("initiate_refund", order_no, **fields)


def money(ledger: Ledger, order_no: str) -> tuple[int, int, int]:
    order = ledger.order(order_no)
    return order.kept_fen, order.due_fen, order.outstanding_fen


# -- case 1: a provider's payment id, ledger-wide --------------------------------------------
def test_a_payment_id_sent_again_with_the_same_facts_counts_once(ledger_app: Ledger) -> None:
    """The issue's input: 20000 due, "ali-99" twice (10000 alipay each): one payment."""
    run(ledger_app, b.submit("M1", lines=[{**PHONE, "unit_price_fen": 20000}]))
    pay = b.pay("M1", 10000, payment_id="ali-99")
    first = run(ledger_app, pay)
    repeated(ledger_app, {**pay, "command_id": b.cid("pay")}, first)
    order = ledger_app.order("M1")
    assert order.paid_fen == {"alipay": 10000} and not order.contract_formed
    assert len([e for e in stream(ledger_app, "M1") if isinstance(e, ev.PaymentReceived)]) == 1


@pytest.mark.parametrize(
    "other", [{"amount_fen": 9999}, {"method": "wechat"}, {"payer_account": "other@example.com"}]
)
def test_a_payment_id_sent_again_with_other_facts_is_refused(
    ledger_app: Ledger, other: dict[str, Any]
) -> None:
    run(ledger_app, b.submit("M1"))
    run(ledger_app, b.pay("M1", 10000, payment_id="ali-99"))
    again = {**b.pay("M1", 10000, payment_id="ali-99"), **other}
    refused(ledger_app, again, "PAYMENT_ID_REUSED", "3.1.3")
    assert ledger_app.order("M1").paid_fen == {"alipay": 10000}


def test_a_payment_id_that_paid_one_order_never_pays_another(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("M1"))
    run(ledger_app, b.submit("M2"))
    run(ledger_app, b.pay("M1", 10000, payment_id="ali-99"))
    error = refused(
        ledger_app, b.pay("M2", 10000, payment_id="ali-99"), "PAYMENT_ID_REUSED", "3.1.3"
    )
    assert "ali-99" not in error.message and "M1" not in error.message
    assert ledger_app.order("M2").paid_fen == {}


def test_a_refused_payment_leaves_its_id_free(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("M1"))
    refused(ledger_app, b.pay("M1", PRICE + 1, payment_id="ali-99"), "OVERPAYMENT", "3.1.3")
    assert run(ledger_app, b.pay("M1", PRICE, payment_id="ali-99")).events[-1] == (
        "order/ContractFormed"
    )


def test_a_payment_id_twice_in_one_import_batch_counts_once(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("M1"))
    first, second = b.pay("M1", 10000, payment_id="ali-99"), b.pay("M1", 10000, payment_id="ali-99")
    done, again = ledger_app.execute_batch([(first, None), (second, None)])
    assert isinstance(done, CommandResult) and isinstance(again, CommandResult)
    assert again.duplicate and again.events == done.events
    assert ledger_app.order("M1").paid_fen == {"alipay": 10000}


@pytest.mark.postgres
def test_two_writers_taking_one_payment_id_for_two_orders_clash_and_one_wins(
    pg_url: str, clock: ManualClock
) -> None:
    with two_ledgers(pg_url, clock) as (left, right):
        left.execute(b.submit("R1"))
        left.execute(b.submit("R2"))
        hold_saves_at(threading.Barrier(2, timeout=WAIT_SECONDS), left, right)
        pay_left = b.pay("R1", 10000, payment_id="wx-7")
        pay_right = b.pay("R2", 10000, payment_id="wx-7")
        outcomes = race(lambda: left.execute(pay_left), lambda: right.execute(pay_right))
        [won] = winners(outcomes)
        [lost] = losers(outcomes)
        assert isinstance(lost, Conflict), repr(lost)
        winner = "R1" if won.command_id == pay_left["command_id"] else "R2"
        assert [no for no in ("R1", "R2") if left.order(no).paid_fen] == [winner]
        claims = list(left.app.events.get(payment_claim_id("wx-7")))
        assert [type(c) for c in claims] == [PaymentIdClaimed]
        # The loser reads again and retries: refused by the winner's payment.
        retry = pay_right if won.command_id == pay_left["command_id"] else pay_left
        with pytest.raises(RuleViolation) as caught:
            right.execute(retry)
        assert caught.value.code == "PAYMENT_ID_REUSED"


# -- case 1: ids that name one thing on their order ------------------------------------------
def test_a_refund_consent_id_is_recorded_once_and_never_changes(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("M1"))
    run(ledger_app, b.pay("M1"))
    consent = b.order_cmd(
        "record_refund_consent",
        "M1",
        consent_id="c-1",
        method="alipay",
        destination_account="6222 0000 1111 2222",
    )
    first = run(ledger_app, consent)
    repeated(ledger_app, {**consent, "command_id": b.cid("consent")}, first)
    for other in ({"destination_account": "6222 9999 8888 7777"}, {"method": "wechat"}):
        command = {**consent, **other, "command_id": b.cid("consent")}
        error = refused(ledger_app, command, "REFUND_CONSENT_ID_REUSED", "3.1.4")
        assert "6222" not in error.message
    [recorded] = [e for e in stream(ledger_app, "M1") if isinstance(e, ev.RefundConsentRecorded)]
    revealed = ledger_app.reveal(recorded.destination_account, "refund_destination", "M1")
    assert revealed == "6222 0000 1111 2222"


def test_a_shipment_sent_again_is_a_repeat_and_another_is_refused(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("M1"))
    run(ledger_app, b.pay("M1"))
    ship = b.ship("M1", tracking_no="SF100", estimated_delivery="2026-03-05T10:00:00+08:00")
    first = run(ledger_app, ship)
    repeated(ledger_app, {**ship, "command_id": b.cid("ship")}, first)
    refused(ledger_app, b.ship("M1", tracking_no="SF101"), "ALREADY_SHIPPED", "3.2")
    refused(
        ledger_app, {**ship, "command_id": b.cid("ship"), "carrier": "JD"}, "ALREADY_SHIPPED", "3.2"
    )


def test_a_refund_completed_again_is_a_repeat(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("M1"))
    run(ledger_app, b.pay("M1"))
    refund_id = run(ledger_app, refund("M1", 1000, "price_adjustment")).result["refund_id"]
    complete = b.order_cmd("complete_refund", "M1", refund_id=refund_id)
    first = run(ledger_app, complete)
    repeated(ledger_app, {**complete, "command_id": b.cid("complete")}, first)
    assert ledger_app.order("M1").refunded_fen == {"alipay": 1000}


def delivered(ledger: Ledger, order_no: str) -> None:
    run(ledger, b.submit(order_no))
    run(ledger, b.pay(order_no))
    run(ledger, b.ship(order_no))
    run(ledger, b.deliver(order_no))


def test_each_step_of_a_return_sent_again_is_a_repeat(ledger_app: Ledger) -> None:
    delivered(ledger_app, "M1")
    steps = [
        b.order_cmd(
            "request_return", "M1", return_id="rma-1", kind="quality", service_region="CN-SH"
        ),
        b.order_cmd("receive_return", "M1", return_id="rma-1"),
        b.order_cmd("inspect_return", "M1", return_id="rma-1"),
    ]
    for step in steps:
        first = run(ledger_app, step)
        repeated(ledger_app, {**step, "command_id": b.cid("again")}, first)
    other = {**steps[0], "command_id": b.cid("again"), "kind": "no_reason"}
    refused(ledger_app, other, "RETURN_ID_REUSED", "3.3.1")
    refused(
        ledger_app,
        {**steps[2], "command_id": b.cid("again"), "gifts_returned": ["g-1"]},
        "RETURN_ID_REUSED",
        "3.3.1",
    )
    assert ledger_app.order("M1").pending_fen("alipay") == PRICE


def test_a_flag_raised_or_reviewed_again_is_a_repeat(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("M1"))
    flag = b.order_cmd(
        "raise_flag", "M1", flag_id="f1", criterion=2, evidence={"signals": ["ip"]}, automated=True
    )
    first = run(ledger_app, flag)
    repeated(ledger_app, {**flag, "command_id": b.cid("flag")}, first)
    refused(
        ledger_app, {**flag, "command_id": b.cid("flag"), "criterion": 1}, "FLAG_EXISTS", "3.1.6"
    )
    review = b.order_cmd("review_flag", "M1", flag_id="f1", reviewer_id="r-1", outcome="confirmed")
    first = run(ledger_app, review)
    repeated(ledger_app, {**review, "command_id": b.cid("review")}, first)
    refused(
        ledger_app,
        {**review, "command_id": b.cid("review"), "outcome": "dismissed"},
        "FLAG_ALREADY_REVIEWED",
        "PIPL 24",
    )


# -- case 2: a refund on an open order says what it means ------------------------------------
def paid_10000(ledger: Ledger, order_no: str = "M1") -> None:
    run(ledger, b.submit(order_no, lines=[{**PHONE, "unit_price_fen": 10000}]))
    run(ledger, b.pay(order_no, 10000))


@pytest.mark.parametrize("completed", [False, True], ids=["pending", "completed"])
def test_an_order_whose_payment_went_back_neither_ships_nor_is_delivered(
    ledger_app: Ledger, completed: bool
) -> None:
    """The issue's input: 10000 due and paid, a refund of 10000, then ship and deliver."""
    paid_10000(ledger_app)
    started = run(ledger_app, refund("M1", 10000, "payment_returned"))
    if completed:
        run(ledger_app, b.order_cmd("complete_refund", "M1", refund_id=started.result["refund_id"]))
    assert money(ledger_app, "M1") == (0, 10000, 10000)
    refused(ledger_app, b.ship("M1"), "NOT_PAID", "3.1.3")
    refused(ledger_app, b.deliver("M1"), "NOT_SHIPPED", "3.2.3")
    # Paid again (another way), it ships.
    run(ledger_app, b.pay("M1", 10000, method="wechat"))
    run(ledger_app, b.ship("M1"))


@pytest.mark.parametrize("purpose", ["price_adjustment", "shortage"])
def test_a_refund_of_all_that_is_due_before_delivery_is_a_termination_not_a_discount(
    ledger_app: Ledger, purpose: str
) -> None:
    paid_10000(ledger_app)
    if purpose == "shortage":
        run(ledger_app, b.order_cmd("declare_stock_shortage", "M1", skus=["PHONE-14"]))
    refused(ledger_app, refund("M1", 10000, purpose), "FULL_REFUND_IS_TERMINATION", "3.1.2")


def test_a_termination_refund_needs_the_termination_asked_for_and_then_closes_the_order(
    ledger_app: Ledger,
) -> None:
    paid_10000(ledger_app)
    refused(ledger_app, refund("M1", 10000, "termination"), "TERMINATION_NOT_REQUESTED", "3.1.2")
    run(ledger_app, b.order_cmd("request_mutual_termination", "M1", requested_by="user"))
    result = run(ledger_app, refund("M1", 4000, "termination"))
    assert result.events == [
        "order/RefundInitiated",
        "order/MutualTerminationAccepted",
        "order/Closed",
        "order/RefundInitiated",
        "order/UserNotified",
    ]
    order = ledger_app.order("M1")
    assert order.is_closed and order.pending_fen("alipay") == 10000
    assert (order.kept_fen, order.due_fen) == (0, 0)
    refused(ledger_app, b.ship("M1"), "ORDER_CLOSED", "3.1.2")
    refused(ledger_app, b.pay("M1", 10000, method="wechat"), "ORDER_CLOSED", "3.1.2")


def paid_in_full_then_refunded(ledger: Ledger, purpose: str) -> None:
    """The issue's second input: 399900 paid in full, then 100000 back."""
    lines = [PHONE, CASE]
    run(ledger, b.submit("M1", lines=lines))
    run(ledger, b.pay("M1", PRICE))
    if purpose == "shortage":
        run(ledger, b.order_cmd("declare_stock_shortage", "M1", skus=["CASE-14"]))
    if purpose == "termination":
        run(ledger, b.order_cmd("request_mutual_termination", "M1", requested_by="user"))
    run(ledger, refund("M1", 100000, purpose))


@pytest.mark.parametrize("purpose", PURPOSES)
def test_a_repayment_after_a_refund_is_taken_only_up_to_what_is_outstanding(
    ledger_app: Ledger, purpose: str
) -> None:
    paid_in_full_then_refunded(ledger_app, purpose)
    repay = b.pay("M1", 100000, method="wechat")
    if purpose in ("price_adjustment", "shortage"):
        # A lower price agreed (or the short case dropped): 299900 due, all of it kept.
        assert money(ledger_app, "M1") == (299900, 299900, 0)
        refused(ledger_app, repay, "ALREADY_PAID", "3.1.2")
        run(ledger_app, b.ship("M1"))
    elif purpose == "termination":
        refused(ledger_app, repay, "ORDER_CLOSED", "3.1.2")
    else:
        # The payment went back to be made again: 100000 outstanding, and no more.
        assert money(ledger_app, "M1") == (299900, PRICE, 100000)
        refused(ledger_app, b.ship("M1"), "NOT_PAID", "3.1.3")
        refused(ledger_app, b.pay("M1", 100001, method="wechat"), "OVERPAYMENT", "3.1.3")
        run(ledger_app, repay)
        assert money(ledger_app, "M1") == (PRICE, PRICE, 0)
        run(ledger_app, b.ship("M1"))
    order = ledger_app.order("M1")
    assert order.kept_fen <= order.due_fen


def test_a_shortage_refund_is_at_most_the_short_lines_and_lets_the_rest_ship(
    ledger_app: Ledger,
) -> None:
    run(ledger_app, b.submit("M1", lines=[PHONE, CASE]))
    run(ledger_app, b.pay("M1", PRICE))
    refused(ledger_app, refund("M1", 1000, "shortage"), "SHORTAGE_NOT_DECLARED", "3.1.4")
    run(ledger_app, b.order_cmd("declare_stock_shortage", "M1", skus=["CASE-14"]))
    refused(ledger_app, b.ship("M1"), "SHORTAGE_UNRESOLVED", "3.1.4")
    refused(ledger_app, refund("M1", 100001, "shortage"), "SHORTAGE_REFUND_TOO_LARGE", "3.1.4")
    result = run(ledger_app, refund("M1", 100000, "shortage"))
    assert result.events == ["order/RefundInitiated", "order/StockShortageResolved"]
    assert only(stream(ledger_app, "M1"), ev.RefundInitiated).purpose == "shortage"
    run(ledger_app, b.order_cmd("declare_stock_shortage", "M1", skus=["CASE-14"]))
    refused(ledger_app, refund("M1", 1, "shortage"), "SHORTAGE_REFUND_TOO_LARGE", "3.1.4")


def test_a_payment_is_not_returned_to_be_made_again_once_the_goods_shipped(
    ledger_app: Ledger,
) -> None:
    run(ledger_app, b.submit("M1"))
    run(ledger_app, b.pay("M1"))
    run(ledger_app, b.ship("M1"))
    refused(ledger_app, refund("M1", 1000, "payment_returned"), "SHIPPED_ORDER_STAYS_PAID", "3.1.3")
    run(ledger_app, refund("M1", 1000, "price_adjustment"))
    assert money(ledger_app, "M1") == (PRICE - 1000, PRICE - 1000, 0)
    run(ledger_app, b.deliver("M1"))


def test_after_delivery_a_goodwill_refund_may_take_the_price_to_nothing(ledger_app: Ledger) -> None:
    delivered(ledger_app, "M1")
    run(ledger_app, refund("M1", PRICE, "price_adjustment"))
    assert money(ledger_app, "M1") == (0, 0, 0)


def test_delivery_needs_what_is_kept_to_cover_a_price_raised_after_shipping(
    ledger_app: Ledger,
) -> None:
    run(ledger_app, b.submit("M1"))
    run(ledger_app, b.pay("M1"))
    run(ledger_app, b.ship("M1"))
    run(
        ledger_app,
        b.order_cmd(
            "detect_price_error",
            "M1",
            sku="PHONE-14",
            displayed_price_fen=PRICE,
            correct_price_fen=PRICE + 5000,
            cause="system settlement error",
        ),
    )
    run(
        ledger_app,
        b.order_cmd(
            "resolve_price_error",
            "M1",
            resolution="adjusted",
            user_consented=True,
            adjusted_total_fen=PRICE + 5000,
        ),
    )
    refused(ledger_app, b.deliver("M1"), "NOT_PAID", "3.1.3")
    refused(ledger_app, b.pay("M1", 5001, method="wechat"), "OVERPAYMENT", "3.1.3")
    run(ledger_app, b.pay("M1", 5000, method="wechat"))
    run(ledger_app, b.deliver("M1"))


def test_a_return_lowers_what_is_due_to_the_gifts_kept(ledger_app: Ledger) -> None:
    gift = {"gift_id": "g-1", "sku": "CASE-14", "price_fen": 3000}
    run(ledger_app, b.submit("M1", gifts=[gift]))
    run(ledger_app, b.pay("M1"))
    run(ledger_app, b.ship("M1"))
    run(ledger_app, b.deliver("M1"))
    for step in ("request_return", "receive_return", "inspect_return"):
        extra = {"kind": "quality", "service_region": "CN-SH"} if step == "request_return" else {}
        run(ledger_app, b.order_cmd(step, "M1", return_id="rma-1", **extra))
    assert money(ledger_app, "M1") == (3000, 3000, 0)


# -- refunds stored before purposes existed --------------------------------------------------
def test_a_refund_stored_as_class_version_1_reads_as_unstated_and_keeps_the_price(
    ledger_app: Ledger,
) -> None:
    run(ledger_app, b.submit("M1"))
    run(ledger_app, b.pay("M1"))
    order = ledger_app.order("M1")
    event = ev.RefundInitiated(
        originator_id=order.id,
        originator_version=order.version + 1,
        timestamp=order.modified_on,
        command_id="old-refund",
        refund_id="M1/R1",
        method="alipay",
        amount_fen=1000,
        destination="original",
        consent_id=None,
        due_by=None,
        purpose="dropped below",
    )
    mapper = ledger_app.app.mapper
    stored = mapper.to_stored_event(event)
    state = mapper.transcoder.decode(stored.state)
    del state["purpose"]
    state["class_version"] = 1
    old = StoredEvent(
        stored.originator_id,
        stored.originator_version,
        stored.topic,
        mapper.transcoder.encode(state),
    )
    ledger_app.app.recorder.insert_events([old])

    assert only(stream(ledger_app, "M1"), ev.RefundInitiated).purpose == "unstated"
    assert money(ledger_app, "M1") == (PRICE - 1000, PRICE, 1000)
