"""DOMAIN.md section 2: stock shortage (3.1.4), purchase limits across linked accounts (3.1.5),
abnormal orders and the human review of automated flags (3.1.6, PIPL 24), price errors
(3.1.7) and promotions (3.1.10). Each rule: the allowed path and the refused one, on both
backends; a refusal names its code and clause and writes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ledger.application import CommandResult, Ledger
from ledger.clock import ManualClock
from ledger.domain.errors import NotFound
from ledger.domain.ids import order_id
from ledger.domain.order import events as ev
from tests import builders as b
from tests.checks import only, refunds_by_method, refused, run, stream
from tests.fix_app import CLOCK_START

PRICE = 399900
SKU = "PHONE-14"

# A second person: no linkage signal in common with builders.CONTACT.
STRANGER = {
    "recipient_name": "李四",
    "phone": "13800001111",
    "address": "北京市朝阳区建国路88号SOHO现代城",
    "ip": "202.96.134.5",
}

CLAIMED = "payment-id/Claimed"  # a payment takes its provider id ledger-wide


# -- helpers ----------------------------------------------------------------------------------
def paid(ledger: Ledger, order_no: str = "S1", **over: Any) -> str:
    run(ledger, b.submit(order_no, **over))
    run(ledger, b.pay(order_no))
    return order_no


# -- 3.1.4 stock shortage ---------------------------------------------------------------------
def declare_shortage(ledger: Ledger, order_no: str = "S1") -> CommandResult:
    return run(ledger, b.order_cmd("declare_stock_shortage", order_no, skus=[SKU]))


def test_cancel_after_payment_is_allowed_while_a_shortage_is_open(ledger_app: Ledger) -> None:
    paid(ledger_app)
    assert declare_shortage(ledger_app).events == ["order/StockShortageDeclared"]
    result = run(ledger_app, b.order_cmd("cancel_order", "S1"))
    assert result.events == [
        "order/CancelledByUser",
        "order/Closed",
        "order/RefundInitiated",
        "order/UserNotified",
    ]
    events = stream(ledger_app, "S1")
    closed = only(events, ev.OrderClosed)
    assert (closed.ground, closed.clause, closed.contract_formed) == (
        "stock_shortage",
        "3.1.4",
        True,
    )
    assert refunds_by_method(events) == {"alipay": PRICE}


def test_cancel_after_payment_is_refused_once_the_shortage_is_resolved_by_exchange(
    ledger_app: Ledger,
) -> None:
    paid(ledger_app)
    declare_shortage(ledger_app)
    run(
        ledger_app,
        b.order_cmd(
            "resolve_stock_shortage", "S1", resolution="exchange", exchange_sku="PHONE-14-PRO"
        ),
    )
    refused(ledger_app, b.order_cmd("cancel_order", "S1"), "CONTRACT_ALREADY_FORMED", "3.1.2")


def test_shortage_resolved_by_exchange_keeps_the_order_and_lets_it_ship(
    ledger_app: Ledger,
) -> None:
    paid(ledger_app)
    declare_shortage(ledger_app)
    result = run(
        ledger_app,
        b.order_cmd(
            "resolve_stock_shortage", "S1", resolution="exchange", exchange_sku="PHONE-14-PRO"
        ),
    )
    assert result.events == ["order/StockShortageResolved"]
    resolved = only(stream(ledger_app, "S1"), ev.StockShortageResolved)
    assert (resolved.resolution, resolved.exchange_sku) == ("exchange", "PHONE-14-PRO")
    assert not ledger_app.order("S1").is_closed
    assert run(ledger_app, b.ship("S1")).events == ["order/Shipped"]


def test_exchange_without_naming_the_other_sku_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app)
    declare_shortage(ledger_app)
    refused(
        ledger_app,
        b.order_cmd("resolve_stock_shortage", "S1", resolution="exchange"),
        "EXCHANGE_SKU_REQUIRED",
        "3.1.4",
    )


def test_shortage_resolved_by_refund_closes_the_order_and_refunds_everything(
    ledger_app: Ledger,
) -> None:
    run(ledger_app, b.submit("S1"))
    run(ledger_app, b.pay("S1", 100000, method="alipay"))
    run(ledger_app, b.pay("S1", PRICE - 100000, method="wechat"))
    declare_shortage(ledger_app)
    result = run(ledger_app, b.order_cmd("resolve_stock_shortage", "S1", resolution="refund"))
    assert result.events[:2] == ["order/StockShortageResolved", "order/Closed"]
    assert result.events[-1] == "order/UserNotified"
    events = stream(ledger_app, "S1")
    closed = only(events, ev.OrderClosed)
    assert (closed.ground, closed.contract_formed) == ("stock_shortage", True)
    assert refunds_by_method(events) == {"alipay": 100000, "wechat": PRICE - 100000}


def test_ship_while_a_shortage_is_unresolved_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app)
    declare_shortage(ledger_app)
    refused(ledger_app, b.ship("S1"), "SHORTAGE_UNRESOLVED", "3.1.4")


def test_shortage_of_a_sku_not_in_the_order_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app)
    refused(
        ledger_app,
        b.order_cmd("declare_stock_shortage", "S1", skus=["TV-65"]),
        "SKU_NOT_IN_ORDER",
        "3.1.4",
    )


def test_shortage_after_shipping_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app)
    run(ledger_app, b.ship("S1"))
    refused(
        ledger_app,
        b.order_cmd("declare_stock_shortage", "S1", skus=[SKU]),
        "ALREADY_SHIPPED",
        "3.1.4",
    )


def test_resolving_a_shortage_never_declared_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app)
    refused(
        ledger_app,
        b.order_cmd("resolve_stock_shortage", "S1", resolution="refund"),
        "SHORTAGE_NOT_DECLARED",
        "3.1.4",
    )


# -- 3.1.5 purchase limits --------------------------------------------------------------------
def define_limit(ledger: Ledger, *, limit_qty: int = 2, per_account: bool = False) -> None:
    run(
        ledger,
        b.other(
            "define_purchase_limit",
            sku=SKU,
            limit_qty=limit_qty,
            period_days=30,
            per_account=per_account,
            valid_from=CLOCK_START.isoformat(),
        ),
    )


def order_of(order_no: str, account_no: str, quantity: int, **contact: str) -> dict[str, Any]:
    return b.submit(
        order_no,
        account_no=account_no,
        lines=[{"sku": SKU, "quantity": quantity, "unit_price_fen": PRICE}],
        contact={**b.CONTACT, **contact},
    )


def test_unlinked_accounts_each_buy_up_to_the_limit(ledger_app: Ledger) -> None:
    define_limit(ledger_app)
    run(ledger_app, order_of("L1", "acct-1", 2))
    result = run(ledger_app, order_of("L2", "acct-2", 2, **STRANGER))
    assert "limit/PurchaseCounted" in result.events


def test_the_same_account_past_the_limit_is_refused(ledger_app: Ledger) -> None:
    define_limit(ledger_app)
    run(ledger_app, order_of("L1", "acct-1", 1))
    refused(ledger_app, order_of("L2", "acct-1", 2), "PURCHASE_LIMIT_EXCEEDED", "3.1.5")
    run(ledger_app, order_of("L3", "acct-1", 1))


def test_an_account_linked_by_the_same_address_is_refused_past_the_limit(
    ledger_app: Ledger,
) -> None:
    define_limit(ledger_app)
    run(ledger_app, order_of("L1", "acct-1", 2))
    # Same address written with other spacing and punctuation; every other signal differs.
    same_address = {**STRANGER, "address": "上海市 浦东新区，世纪大道100号 环球金融中心 58楼"}
    refused(
        ledger_app,
        order_of("L2", "acct-2", 1, **same_address),
        "PURCHASE_LIMIT_EXCEEDED",
        "3.1.5",
    )
    with pytest.raises(NotFound):
        ledger_app.order("L2")


def test_an_account_linked_by_the_same_phone_is_refused_past_the_limit(
    ledger_app: Ledger,
) -> None:
    define_limit(ledger_app)
    run(ledger_app, order_of("L1", "acct-1", 1))
    same_phone = {**STRANGER, "phone": "+86 139-1234-5678"}
    refused(
        ledger_app,
        order_of("L2", "acct-2", 2, **same_phone),
        "PURCHASE_LIMIT_EXCEEDED",
        "3.1.5",
    )
    run(ledger_app, order_of("L3", "acct-2", 1, **same_phone))


def test_a_per_account_limit_does_not_count_across_linked_accounts(ledger_app: Ledger) -> None:
    define_limit(ledger_app, per_account=True)
    run(ledger_app, order_of("L1", "acct-1", 2))
    run(ledger_app, order_of("L2", "acct-2", 2))  # same contact, another account: allowed
    refused(ledger_app, order_of("L3", "acct-1", 1), "PURCHASE_LIMIT_EXCEEDED", "3.1.5")


def test_a_new_period_resets_the_limit(ledger_app: Ledger, clock: ManualClock) -> None:
    define_limit(ledger_app)
    run(ledger_app, order_of("L1", "acct-1", 2))
    refused(ledger_app, order_of("L2", "acct-2", 1), "PURCHASE_LIMIT_EXCEEDED", "3.1.5")
    clock.advance(timedelta(days=29, hours=23))
    refused(ledger_app, order_of("L3", "acct-2", 1), "PURCHASE_LIMIT_EXCEEDED", "3.1.5")
    clock.advance(timedelta(hours=1))
    run(ledger_app, order_of("L4", "acct-2", 2))


def test_revising_a_limit_mid_period_keeps_what_was_already_bought(ledger_app: Ledger) -> None:
    define_limit(ledger_app, limit_qty=2)
    run(ledger_app, order_of("L1", "acct-1", 2))
    define_limit(ledger_app, limit_qty=3)
    refused(ledger_app, order_of("L2", "acct-1", 2), "PURCHASE_LIMIT_EXCEEDED", "3.1.5")
    run(ledger_app, order_of("L3", "acct-1", 1))


def test_an_order_cancelled_before_payment_no_longer_counts_toward_the_limit(
    ledger_app: Ledger,
) -> None:
    define_limit(ledger_app)
    run(ledger_app, order_of("L1", "acct-1", 2))
    refused(ledger_app, order_of("L2", "acct-1", 1), "PURCHASE_LIMIT_EXCEEDED", "3.1.5")
    cancelled = run(ledger_app, b.order_cmd("cancel_order", "L1"))
    assert cancelled.events.count("limit/PurchaseReleased") == 5  # account + four signals
    run(ledger_app, order_of("L3", "acct-1", 2))


def test_an_order_closed_after_payment_still_counts_toward_the_limit(ledger_app: Ledger) -> None:
    define_limit(ledger_app)
    run(ledger_app, order_of("L1", "acct-1", 2))
    run(ledger_app, b.pay("L1", amount_fen=2 * PRICE))
    run(ledger_app, b.order_cmd("request_mutual_termination", "L1", requested_by="user"))
    closed = run(ledger_app, b.order_cmd("accept_mutual_termination", "L1"))
    assert "limit/PurchaseReleased" not in closed.events
    refused(ledger_app, order_of("L2", "acct-1", 1), "PURCHASE_LIMIT_EXCEEDED", "3.1.5")


def test_the_seller_closes_orders_passing_a_limit_only_naming_them(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("L1"))
    refused(
        ledger_app,
        b.order_cmd("close_order", "L1", ground="purchase_limit"),
        "EVIDENCE_REQUIRED",
        "3.1.5",
    )
    run(
        ledger_app,
        b.order_cmd("close_order", "L1", ground="purchase_limit", evidence={"orders": ["L0"]}),
    )
    closed = only(stream(ledger_app, "L1"), ev.OrderClosed)
    assert (closed.ground, closed.clause, closed.evidence) == (
        "purchase_limit",
        "3.1.5",
        {"orders": ["L0"], "signals": []},
    )


# -- 3.1.6 abnormal orders, PIPL 24 -----------------------------------------------------------
def raise_flag(ledger: Ledger, order_no: str = "S1", *, automated: bool = True) -> CommandResult:
    return run(
        ledger,
        b.order_cmd(
            "raise_flag",
            order_no,
            flag_id="flag-1",
            criterion=2,
            evidence={"orders": [order_no, "S9"], "signals": ["address", "phone"]},
            automated=automated,
        ),
    )


def review(ledger: Ledger, outcome: str, order_no: str = "S1") -> dict[str, Any]:
    return b.order_cmd(
        "review_flag", order_no, flag_id="flag-1", reviewer_id="risk-officer-7", outcome=outcome
    )


def close_abnormal(order_no: str = "S1", flag_id: str = "flag-1") -> dict[str, Any]:
    return b.order_cmd(
        "close_order",
        order_no,
        ground="abnormal_order",
        evidence={"flag_id": flag_id, "orders": [order_no, "S9"]},
    )


def test_a_flag_records_criterion_evidence_and_automation(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("S1"))
    assert raise_flag(ledger_app).events == ["order/AbnormalOrderFlagRaised"]
    flag = only(stream(ledger_app, "S1"), ev.AbnormalOrderFlagRaised)
    assert (flag.flag_id, flag.criterion, flag.automated) == ("flag-1", 2, True)
    assert flag.evidence == {"orders": ["S1", "S9"], "signals": ["address", "phone"]}


def test_a_flag_without_evidence_is_refused(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("S1"))
    refused(
        ledger_app,
        b.order_cmd("raise_flag", "S1", flag_id="flag-1", criterion=5, evidence={}, automated=True),
        "EVIDENCE_REQUIRED",
        "3.1.6",
    )


def test_closing_on_an_automated_flag_no_person_reviewed_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app)
    raise_flag(ledger_app)
    refused(ledger_app, close_abnormal(), "FLAG_NOT_REVIEWED", "PIPL 24")


def test_closing_on_an_automated_flag_a_person_confirmed_is_allowed(ledger_app: Ledger) -> None:
    paid(ledger_app)
    raise_flag(ledger_app)
    assert run(ledger_app, review(ledger_app, "confirmed")).events == [
        "order/AbnormalOrderFlagReviewed"
    ]
    result = run(ledger_app, close_abnormal())
    assert result.events == [
        "order/Closed",
        "order/RefundInitiated",
        "order/UserNotified",
    ]
    closed = only(stream(ledger_app, "S1"), ev.OrderClosed)
    assert (closed.ground, closed.clause, closed.contract_formed) == (
        "abnormal_order",
        "3.1.6",
        True,
    )
    assert closed.evidence["flag_id"] == "flag-1"


def test_closing_on_a_flag_a_person_raised_needs_no_second_review(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("S1"))
    raise_flag(ledger_app, automated=False)
    assert run(ledger_app, close_abnormal()).events[0] == "order/Closed"


def test_closing_on_a_dismissed_flag_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app)
    raise_flag(ledger_app)
    run(ledger_app, review(ledger_app, "dismissed"))
    refused(ledger_app, close_abnormal(), "FLAG_DISMISSED", "3.1.6")


def test_closing_on_an_unknown_flag_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app)
    refused(ledger_app, close_abnormal(flag_id="nope"), "FLAG_NOT_FOUND", "3.1.6")


def test_reviewing_a_flag_twice_is_refused(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("S1"))
    raise_flag(ledger_app)
    run(ledger_app, review(ledger_app, "confirmed"))
    refused(ledger_app, review(ledger_app, "dismissed"), "FLAG_ALREADY_REVIEWED", "PIPL 24")


def test_closing_an_abnormal_order_shipped_but_not_delivered_is_allowed(
    ledger_app: Ledger,
) -> None:
    paid(ledger_app)
    run(ledger_app, b.ship("S1"))
    raise_flag(ledger_app)
    run(ledger_app, review(ledger_app, "confirmed"))
    run(ledger_app, close_abnormal())
    assert refunds_by_method(stream(ledger_app, "S1")) == {"alipay": PRICE}


def test_closing_an_abnormal_order_after_delivery_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app)
    run(ledger_app, b.ship("S1"))
    raise_flag(ledger_app)
    run(ledger_app, review(ledger_app, "confirmed"))
    run(ledger_app, b.deliver("S1"))
    refused(ledger_app, close_abnormal(), "ALREADY_DELIVERED", "3.1.6")
    assert not ledger_app.order("S1").is_closed


def test_a_closed_order_refuses_a_flag_review(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("S1"))
    raise_flag(ledger_app)
    run(ledger_app, b.order_cmd("cancel_order", "S1"))
    refused(ledger_app, review(ledger_app, "confirmed"), "ORDER_CLOSED", "3.1.2")


# -- 3.1.7 price errors -----------------------------------------------------------------------
def detect(ledger: Ledger, order_no: str = "S1") -> CommandResult:
    return run(
        ledger,
        b.order_cmd(
            "detect_price_error",
            order_no,
            sku=SKU,
            displayed_price_fen=PRICE,
            correct_price_fen=499900,
            cause="price feed dropped a digit",
        ),
    )


def resolve(order_no: str = "S1", **fields: Any) -> dict[str, Any]:
    return b.order_cmd("resolve_price_error", order_no, **fields)


def test_a_price_error_records_displayed_and_correct_price_and_cause(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("S1"))
    assert detect(ledger_app).events == ["order/PriceErrorDetected"]
    found = only(stream(ledger_app, "S1"), ev.PriceErrorDetected)
    assert (found.sku, found.displayed_price_fen, found.correct_price_fen) == (SKU, PRICE, 499900)
    # Free text is sealed to its order and field (issue 11, item 5).
    assert found.cause.startswith("s2:m:acct-1:")
    assert ledger_app.reveal(found.cause, "cause", "S1") == "price feed dropped a digit"


@pytest.mark.parametrize("resolution", ["adjusted", "terminated"])
def test_resolving_a_price_error_against_the_user_without_consent_is_refused(
    ledger_app: Ledger, resolution: str
) -> None:
    paid(ledger_app)
    detect(ledger_app)
    refused(
        ledger_app,
        resolve(resolution=resolution, user_consented=False, adjusted_total_fen=499900),
        "USER_CONSENT_REQUIRED",
        "3.1.7",
    )
    assert not ledger_app.order("S1").is_closed


def test_the_seller_may_not_close_while_a_price_error_is_open(ledger_app: Ledger) -> None:
    paid(ledger_app)
    detect(ledger_app)
    refused(
        ledger_app,
        b.order_cmd("close_order", "S1", ground="purchase_limit", evidence={"orders": ["S0"]}),
        "PRICE_ERROR_NO_UNILATERAL_CLOSE",
        "3.1.7",
    )


def test_closing_on_the_ground_of_a_price_error_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app)
    detect(ledger_app)
    refused(
        ledger_app,
        b.order_cmd("close_order", "S1", ground="price_error"),
        "CLOSURE_GROUND_NOT_ALLOWED",
        "3.1.7",
    )


def test_honouring_a_price_error_needs_no_consent_and_the_order_goes_on(
    ledger_app: Ledger,
) -> None:
    paid(ledger_app)
    detect(ledger_app)
    result = run(ledger_app, resolve(resolution="honoured"))
    assert result.events == ["order/PriceErrorResolved"]
    order = ledger_app.order("S1")
    assert (order.price_error_open, order.total_due_fen, order.is_closed) == (False, PRICE, False)
    run(ledger_app, b.ship("S1"))


def test_resolving_without_an_open_price_error_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app)
    refused(ledger_app, resolve(resolution="honoured"), "NO_OPEN_PRICE_ERROR", "3.1.7")


def test_an_adjustment_with_consent_changes_the_amount_due(ledger_app: Ledger) -> None:
    run(ledger_app, b.submit("S1"))
    detect(ledger_app)
    run(ledger_app, resolve(resolution="adjusted", user_consented=True, adjusted_total_fen=499900))
    assert ledger_app.order("S1").total_due_fen == 499900
    assert run(ledger_app, b.pay("S1", PRICE)).events == [CLAIMED, "order/PaymentReceived"]
    refused(ledger_app, b.ship("S1"), "NOT_PAID", "3.1.3")
    assert run(ledger_app, b.pay("S1", 100000)).events[-1] == "order/ContractFormed"


def test_an_adjusted_total_below_what_was_paid_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app)
    detect(ledger_app)
    refused(
        ledger_app,
        resolve(resolution="adjusted", user_consented=True, adjusted_total_fen=PRICE - 1),
        "ADJUSTED_TOTAL_INVALID",
        "3.1.7",
    )


def test_an_adjustment_down_to_what_was_paid_forms_the_contract(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    run(ledger_app, b.submit("S1"))
    run(ledger_app, b.pay("S1", 300000))
    detect(ledger_app)
    result = run(
        ledger_app, resolve(resolution="adjusted", user_consented=True, adjusted_total_fen=300000)
    )
    order = ledger_app.order("S1")
    assert order.paid_total_fen == order.total_due_fen == 300000
    assert result.events == ["order/PriceErrorResolved", "order/ContractFormed"]
    assert order.contract_formed
    clock.advance(timedelta(hours=1))
    run(ledger_app, b.ship("S1"))


def test_termination_with_consent_closes_the_order_with_a_refund(ledger_app: Ledger) -> None:
    paid(ledger_app)
    detect(ledger_app)
    result = run(ledger_app, resolve(resolution="terminated", user_consented=True))
    assert result.events == [
        "order/PriceErrorResolved",
        "order/Closed",
        "order/RefundInitiated",
        "order/UserNotified",
    ]
    events = stream(ledger_app, "S1")
    closed = only(events, ev.OrderClosed)
    assert (closed.ground, closed.clause, closed.contract_formed) == (
        "price_error_terminated",
        "3.1.7",
        True,
    )
    assert refunds_by_method(events) == {"alipay": PRICE}


def test_a_price_error_after_delivery_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app)
    run(ledger_app, b.ship("S1"))
    run(ledger_app, b.deliver("S1"))
    refused(
        ledger_app,
        b.order_cmd(
            "detect_price_error",
            "S1",
            sku=SKU,
            displayed_price_fen=PRICE,
            correct_price_fen=499900,
            cause="late",
        ),
        "ALREADY_DELIVERED",
        "3.1.7",
    )


# -- 3.1.10 promotions ------------------------------------------------------------------------
PROMO_FROM = CLOCK_START + timedelta(hours=1)
PROMO_UNTIL = CLOCK_START + timedelta(hours=3)


def define_promotion(ledger: Ledger, **over: Any) -> None:
    fields = {
        "promotion_no": "P-1111",
        "valid_from": PROMO_FROM.isoformat(),
        "valid_until": PROMO_UNTIL.isoformat(),
        "description": "double eleven",
        **over,
    }
    run(ledger, b.other("define_promotion", **fields))


def submitted_event(ledger: Ledger, order_no: str) -> ev.OrderSubmitted:
    """The order's Submitted event, read from the notification log."""
    wanted = order_id(order_no)
    for notification in ledger.app.recorder.select_notifications(start=1, limit=1000):
        if notification.originator_id == wanted and notification.originator_version == 1:
            event = ledger.app.mapper.to_domain_event(notification)
            assert isinstance(event, ev.OrderSubmitted)
            return event
    raise AssertionError(f"no Submitted event for {order_no}")


def test_an_order_naming_a_promotion_before_its_window_is_refused(ledger_app: Ledger) -> None:
    define_promotion(ledger_app)
    refused(ledger_app, b.submit("S1", promotion_nos=["P-1111"]), "PROMOTION_NOT_ACTIVE", "3.1.10")


def test_an_order_naming_a_promotion_at_the_end_of_its_window_is_refused(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    define_promotion(ledger_app)
    clock.set(PROMO_UNTIL)
    refused(ledger_app, b.submit("S1", promotion_nos=["P-1111"]), "PROMOTION_NOT_ACTIVE", "3.1.10")


def test_an_order_naming_an_unknown_promotion_is_refused(ledger_app: Ledger) -> None:
    refused(ledger_app, b.submit("S1", promotion_nos=["P-0"]), "PROMOTION_NOT_FOUND", "3.1.10")


def test_an_order_inside_the_window_records_the_promotion_rule_version(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    define_promotion(ledger_app)
    clock.set(PROMO_FROM)
    run(ledger_app, b.submit("S1", promotion_nos=["P-1111"]))
    assert submitted_event(ledger_app, "S1").promotions == [
        {"promotion_no": "P-1111", "rule_version": 1}
    ]
    # A revision raises the version; later orders record the new one, earlier ones keep theirs.
    define_promotion(ledger_app, description="double eleven, revised")
    clock.advance(timedelta(hours=1))
    run(ledger_app, b.submit("S2", promotion_nos=["P-1111"]))
    assert submitted_event(ledger_app, "S2").promotions == [
        {"promotion_no": "P-1111", "rule_version": 2}
    ]
    assert submitted_event(ledger_app, "S1").promotions[0]["rule_version"] == 1


def test_a_promotion_is_checked_at_submission_not_at_payment(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    define_promotion(ledger_app)
    clock.set(PROMO_UNTIL - timedelta(minutes=1))
    run(ledger_app, b.submit("S1", promotion_nos=["P-1111"]))
    clock.advance(timedelta(minutes=10))
    assert run(ledger_app, b.pay("S1")).events[-1] == "order/ContractFormed"


def test_shipping_with_a_price_error_open_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app, "P9")
    run(
        ledger_app,
        b.order_cmd(
            "detect_price_error",
            "P9",
            sku=SKU,
            displayed_price_fen=PRICE,
            correct_price_fen=PRICE + 50000,
            cause="feed",
        ),
    )
    refused(ledger_app, b.ship("P9"), "PRICE_ERROR_UNRESOLVED", "3.1.7")
    run(ledger_app, b.order_cmd("resolve_price_error", "P9", resolution="honoured"))
    assert run(ledger_app, b.ship("P9")).events == ["order/Shipped"]
