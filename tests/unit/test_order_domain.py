"""The Order aggregate on its own: no storage, no application; events read from
``pending_events``. Orders are built as ledger/handlers/submission.py builds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest

from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.order import events as ev
from ledger.domain.order.aggregate import Order
from ledger.domain.order.submission import Submission

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
_ids = count(1)
PHONE = {"sku": "PHONE-14", "quantity": 1, "unit_price_fen": 399900, "discount_fen": 0}
CASE = {"gift_id": "g-case", "sku": "CASE-14", "price_fen": 4900}
BUDS = {"gift_id": "g-buds", "sku": "BUDS-3", "price_fen": 19900}


def ctx(at: datetime = T0) -> Ctx:
    return Ctx(f"cmd-{next(_ids)}", at)


def submitted(**over: Any) -> Order:
    lines = over.pop("lines", [dict(PHONE)])
    fields: dict[str, Any] = {
        "order_no": "O-1",
        "account_no": "acct-1",
        "lines": lines,
        "gifts": [],
        "promotions": [],
        "f_codes": [],
        "coupons": [],
        "purchase_type": "consumer",
        "seller_id": "xiaomi-self",
        "seller_kind": "self_operated",
        "shipping_region": "CN-SH",
        "payment_deadline": T0 + timedelta(minutes=30),
        "total_due_fen": sum(ln["quantity"] * ln["unit_price_fen"] for ln in lines),
        "contact": {"recipient_name": "s1:acct-1:x", "phone": "s1:acct-1:y"},
        "linkage": {"phone": "ab12"},
        "limit_counters": [],
    }
    fields.update(over)
    decided = {name: fields.pop(name) for name in ("total_due_fen", "contact", "limit_counters")}
    return Order.submit(ctx(), Submission(**fields), **decided)


def paid(order: Order, *payments: tuple[str, int]) -> Order:
    for method, amount in payments or (("alipay", order.total_due_fen),):
        order.receive_payment(ctx(), f"pay-{next(_ids)}", method, "s1:acct-1:z", amount)
    return order


def delivered(order: Order, at: datetime = T0, relation: str = "self") -> Order:
    order.ship(ctx(), "SF", "SF123", None, None)
    order.deliver(ctx(at), relation, 7)
    return order


def returned(order: Order, gifts_returned: list[str], kind: str = "no_reason") -> list[Any]:
    """Request, receive and inspect a return; the events the inspection emitted."""
    order.request_return(ctx(), "r1", kind, "CN-SH", False)
    order.receive_return(ctx(), "r1")
    return emitted(order, lambda: order.inspect_return(ctx(), "r1", gifts_returned, "kept"))


def emitted(order: Order, run: Any) -> list[Any]:
    before = len(order.pending_events)
    run()
    return list(order.pending_events[before:])


def refunds(events: list[Any]) -> dict[str, int]:
    return {e.method: e.amount_fen for e in events if isinstance(e, ev.RefundInitiated)}


def refused(order: Order, run: Any, code: str, clause: str) -> None:
    before = len(order.pending_events)
    with pytest.raises(RuleViolation) as caught:
        run()
    assert (caught.value.code, caught.value.clause) == (code, clause), caught.value.message
    assert len(order.pending_events) == before, "a refused command emitted events"


# -- contract formation ------------------------------------------------------------------------
def test_a_part_payment_forms_no_contract_and_the_rest_does() -> None:
    order = submitted()

    first = emitted(order, lambda: paid(order, ("alipay", 100000)))
    second = emitted(order, lambda: paid(order, ("card", 299900)))

    assert [type(e) for e in first] == [ev.PaymentReceived]
    assert [type(e) for e in second] == [ev.PaymentReceived, ev.ContractFormed]
    assert order.contract_formed and order.paid_total_fen == 399900


def test_shipping_before_the_contract_forms_is_refused() -> None:
    order = paid(submitted(), ("alipay", 100000))

    refused(order, lambda: order.ship(ctx(), "SF", "SF1", None, None), "NOT_PAID", "3.1.3")


# -- gift withheld from a split-payment refund (3.1.8, 3.1.4) ----------------------------------
def test_a_gift_kept_is_withheld_from_the_largest_payment_and_the_rest_goes_back_by_method() -> (
    None
):
    order = delivered(paid(submitted(gifts=[CASE, BUDS]), ("card", 99900), ("alipay", 300000)))

    events = returned(order, gifts_returned=["g-buds"])

    charged = [(e.gift_id, e.price_fen) for e in events if isinstance(e, ev.GiftPriceCharged)]
    assert charged == [("g-case", 4900)]
    assert refunds(events) == {"alipay": 300000 - 4900, "card": 99900}
    assert sum(refunds(events).values()) == order.paid_total_fen - 4900


def test_a_gift_dearer_than_the_largest_payment_is_withheld_across_payments() -> None:
    robot = {"gift_id": "g-robot", "sku": "ROBOT", "price_fen": 320000}
    order = delivered(
        paid(submitted(gifts=[robot]), ("alipay", 300000), ("card", 60000), ("wechat", 39900))
    )

    events = returned(order, gifts_returned=[])

    # 300000 kept from alipay, the remaining 20000 from the next largest (card).
    assert refunds(events) == {"card": 40000, "wechat": 39900}
    assert sum(refunds(events).values()) == 399900 - 320000


def test_every_gift_returned_refunds_every_method_in_full() -> None:
    order = delivered(paid(submitted(gifts=[CASE, BUDS]), ("card", 99900), ("alipay", 300000)))

    events = returned(order, gifts_returned=["g-case", "g-buds"])

    assert not [e for e in events if isinstance(e, ev.GiftPriceCharged)]
    assert refunds(events) == {"alipay": 300000, "card": 99900}


def test_no_refund_is_more_than_what_was_paid_less_earlier_refunds() -> None:
    order = delivered(paid(submitted(), ("card", 99900), ("alipay", 300000)))
    order.initiate_refund(ctx(), "alipay", 50000, "price_adjustment")

    events = returned(order, gifts_returned=[])

    assert refunds(events) == {"alipay": 250000, "card": 99900}
    refused(
        order,
        lambda: order.initiate_refund(ctx(), "card", 1, "price_adjustment"),
        "OVER_REFUND",
        "3.1.4",
    )


def test_a_return_refund_is_due_seven_days_after_receipt() -> None:
    order = delivered(paid(submitted()))
    order.request_return(ctx(T0 + timedelta(days=1)), "r1", "no_reason", "CN-SH", False)
    received_at = T0 + timedelta(days=3, hours=2)
    order.receive_return(ctx(received_at), "r1")

    events = emitted(
        order, lambda: order.inspect_return(ctx(T0 + timedelta(days=6)), "r1", [], "kept")
    )

    [refund] = [e for e in events if isinstance(e, ev.RefundInitiated)]
    assert refund.due_by == received_at + timedelta(days=7)


def test_inspecting_a_return_before_the_goods_arrive_is_refused() -> None:
    order = delivered(paid(submitted()))
    order.request_return(ctx(), "r1", "no_reason", "CN-SH", False)

    refused(
        order,
        lambda: order.inspect_return(ctx(), "r1", [], "kept"),
        "RETURN_NOT_RECEIVED",
        "3.3.1",
    )


# -- closure of a formed contract (ECL 49) -----------------------------------------------------
def test_a_closure_after_payment_refunds_every_method_and_notifies_the_user() -> None:
    order = paid(submitted(), ("card", 99900), ("alipay", 300000))
    order.ship(ctx(), "SF", "SF1", None, None)
    order.record_delivery_failure(ctx(), "force_majeure")

    events = emitted(order, lambda: order.close_by_seller(ctx(), "force_majeure", {}))

    [closed] = [e for e in events if isinstance(e, ev.OrderClosed)]
    assert (closed.ground, closed.clause, closed.contract_formed) == (
        "force_majeure",
        "3.2.4(4)",
        True,
    )
    assert refunds(events) == {"alipay": 300000, "card": 99900}
    assert {e.destination for e in events if isinstance(e, ev.RefundInitiated)} == {"original"}
    assert isinstance(events[-1], ev.UserNotified)


def test_a_closure_before_any_payment_refunds_nothing_and_forms_nothing() -> None:
    order = submitted()

    events = emitted(order, lambda: order.cancel_by_user(ctx(), "changed my mind"))

    [closed] = [e for e in events if isinstance(e, ev.OrderClosed)]
    assert (closed.ground, closed.contract_formed) == ("user_cancel", False)
    assert refunds(events) == {}


def test_a_user_cancel_after_the_contract_formed_is_refused() -> None:
    order = paid(submitted())

    refused(
        order,
        lambda: order.cancel_by_user(ctx(), "too late"),
        "CONTRACT_ALREADY_FORMED",
        "3.1.2",
    )


def test_a_refused_cancel_points_to_mutual_termination_before_delivery_and_a_return_after() -> None:
    before = paid(submitted())
    with pytest.raises(RuleViolation) as undelivered:
        before.cancel_by_user(ctx(), "too late")
    after = delivered(paid(submitted()))
    with pytest.raises(RuleViolation) as done:
        after.cancel_by_user(ctx(), "too late")

    assert "mutual termination" in undelivered.value.message
    assert (done.value.code, done.value.clause) == ("CONTRACT_ALREADY_FORMED", "3.1.2")
    assert "return" in done.value.message and "mutual termination" not in done.value.message


# -- delivery and returns ----------------------------------------------------------------------
def test_a_group_purchase_delivery_opens_no_no_reason_window() -> None:
    order = delivered(paid(submitted(purchase_type="enterprise_group")))

    assert order.return_deadline is None
    refused(
        order,
        lambda: order.request_return(ctx(), "r1", "no_reason", "CN-SH", False),
        "GROUP_PURCHASE_NO_REASON_RETURN",
        "3.3.2",
    )


def test_a_consumer_delivery_sets_the_window_end_in_china_time() -> None:
    signed = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)  # 00:30 on 3 March in Shanghai

    order = delivered(paid(submitted()), at=signed)

    assert order.return_deadline == datetime(2026, 3, 10, 16, 0, tzinfo=UTC)


def test_closing_on_no_answer_counts_only_unanswered_calls() -> None:
    order = paid(submitted())
    order.ship(ctx(), "SF", "SF1", None, None)
    for answered in (True, False, True):
        order.record_contact_call(ctx(), answered)

    refused(
        order,
        lambda: order.close_by_seller(ctx(), "no_answer", {}),
        "TWO_CALLS_REQUIRED",
        "3.2.4(2)",
    )
    order.record_contact_call(ctx(), False)
    order.close_by_seller(ctx(), "no_answer", {})
    assert order.closed_ground == "no_answer"


# -- completion (ECL 31) -----------------------------------------------------------------------
def test_completion_at_the_window_end_keeps_the_record_three_china_years() -> None:
    signed = datetime(2028, 2, 21, 10, 0, tzinfo=UTC)  # 18:00 on 21 Feb in Shanghai
    order = delivered(paid(submitted()), at=signed)
    # 24:00 on 28 Feb (the window's last day) in Shanghai, stored as 29 Feb 00:00.
    window_end = datetime(2028, 2, 28, 16, 0, tzinfo=UTC)

    refused(
        order,
        lambda: order.complete_transaction(ctx(window_end - timedelta(microseconds=1))),
        "TRANSACTION_NOT_COMPLETE",
        "ECL 31",
    )
    events = emitted(order, lambda: order.complete_transaction(ctx(window_end)))

    [done] = events
    assert done.completed_at == window_end
    # Counted from the last day, 28 Feb: kept until 24:00 on 28 Feb 2031 (1 March 00:00 in
    # Shanghai), not 28 Feb 00:00, which reading the end as 29 Feb would give (a day short).
    assert done.retain_until == datetime(2031, 2, 28, 16, 0, tzinfo=UTC)


def test_completion_waits_for_every_refund_of_a_closed_order() -> None:
    order = paid(submitted(), ("card", 99900), ("alipay", 300000))
    order.declare_stock_shortage(ctx(), ["PHONE-14"])
    order.resolve_stock_shortage(ctx(), "refund")
    first, second = list(order.pending_refunds)

    order.complete_refund(ctx(T0 + timedelta(days=1)), first)
    refused(
        order,
        lambda: order.complete_transaction(ctx(T0 + timedelta(days=2))),
        "TRANSACTION_NOT_COMPLETE",
        "ECL 31",
    )
    order.complete_refund(ctx(T0 + timedelta(days=3)), second)
    [done] = emitted(order, lambda: order.complete_transaction(ctx(T0 + timedelta(days=4))))

    assert done.completed_at == T0 + timedelta(days=3)
