"""Returns, after-sales and completion (DOMAIN.md sections 5 and 7; CPL 24/25, 7D, 3.1.8,
3.3.2, 3.3.3, ECL 31), through the application.

Times: the clock starts 2026-03-02 01:00 UTC (09:00 in Shanghai, UTC+8, no DST).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.domain.order.events import (
    Delivered,
    GiftPriceCharged,
    RefundInitiated,
    ReturnReceived,
    ReturnRequested,
    TransactionCompleted,
)
from tests import builders as b
from tests.checks import events_of, refused

MICRO = timedelta(microseconds=1)
GIFT = {"gift_id": "g-case", "sku": "CASE-14", "price_fen": 4900}
EARBUDS = {"gift_id": "g-buds", "sku": "BUDS-3", "price_fen": 19900}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def delivered(
    ledger: Ledger, clock: ManualClock, order_no: str, at: datetime | None = None, **over: Any
) -> None:
    """Submitted, paid and shipped now; signed for at ``at`` (default: now)."""
    ledger.execute(b.submit(order_no, **over))
    ledger.execute(b.pay(order_no))
    ledger.execute(b.ship(order_no))
    if at is not None:
        clock.set(at)
    ledger.execute(b.deliver(order_no))


def ask_return(
    order_no: str, kind: str = "no_reason", region: str = "CN-SH", **over: Any
) -> dict[str, Any]:
    command = b.order_cmd("request_return", order_no, return_id="r1", service_region=region)
    return {**command, "kind": kind, **over}


def receive(order_no: str) -> dict[str, Any]:
    return b.order_cmd("receive_return", order_no, return_id="r1")


def inspect(order_no: str, gifts_returned: list[str] | None = None) -> dict[str, Any]:
    return b.order_cmd(
        "inspect_return", order_no, return_id="r1", gifts_returned=gifts_returned or []
    )


def complete(order_no: str) -> dict[str, Any]:
    return b.order_cmd("complete_transaction", order_no)


# -- the seven-day window, in China time -------------------------------------------------------
@pytest.mark.parametrize(
    ("signed_at", "deadline"),
    [
        # 23:30 on 2 March in Shanghai: day D is 2 March, the window ends 9 March 24:00.
        pytest.param(utc(2026, 3, 2, 15, 30), utc(2026, 3, 9, 16, 0), id="23:30-china"),
        # 00:30 on 3 March in Shanghai (still 2 March in UTC): one day more.
        pytest.param(utc(2026, 3, 2, 16, 30), utc(2026, 3, 10, 16, 0), id="00:30-china"),
    ],
)
def test_no_reason_return_is_allowed_until_day_seven_ends_in_china_and_refused_from_then(
    ledger_app: Ledger, clock: ManualClock, signed_at: datetime, deadline: datetime
) -> None:
    delivered(ledger_app, clock, "O-last", at=signed_at)
    delivered(ledger_app, clock, "O-late", at=signed_at)
    [signed] = events_of(ledger_app, "O-last", Delivered)
    assert signed.return_deadline == deadline

    clock.set(deadline - MICRO)
    assert ledger_app.execute(ask_return("O-last")).events == ["order/ReturnRequested"]

    clock.set(deadline)
    refused(ledger_app, ask_return("O-late"), "RETURN_WINDOW_CLOSED", "CPL 25")


def test_no_reason_return_after_the_window_is_refused(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    delivered(ledger_app, clock, "O-1")
    clock.advance(timedelta(days=30))

    refused(ledger_app, ask_return("O-1"), "RETURN_WINDOW_CLOSED", "CPL 25")


def test_a_return_before_delivery_is_refused(ledger_app: Ledger) -> None:
    ledger_app.execute(b.submit("O-1"))
    ledger_app.execute(b.pay("O-1"))
    ledger_app.execute(b.ship("O-1"))

    refused(ledger_app, ask_return("O-1", kind="quality"), "NOT_DELIVERED", "CPL 25")


# -- who and what may be returned without reason -----------------------------------------------
def test_a_group_purchase_has_no_no_reason_return_but_keeps_the_quality_return(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    delivered(ledger_app, clock, "O-1", purchase_type="enterprise_group")

    refused(ledger_app, ask_return("O-1"), "GROUP_PURCHASE_NO_REASON_RETURN", "3.3.2")
    result = ledger_app.execute(ask_return("O-1", kind="quality"))

    assert result.events == ["order/ReturnRequested"]


@pytest.mark.parametrize(
    "exclusion", ["custom_made", "perishable", "unsealed_media", "confirmed_at_purchase"]
)
def test_excluded_goods_have_no_no_reason_return_but_keep_the_quality_return(
    ledger_app: Ledger, clock: ManualClock, exclusion: str
) -> None:
    lines = [
        {"sku": "PHONE-14", "quantity": 1, "unit_price_fen": 299900},
        {
            "sku": "ENGRAVED",
            "quantity": 1,
            "unit_price_fen": 100000,
            "no_reason_exclusion": exclusion,
        },
    ]
    delivered(ledger_app, clock, "O-1", lines=lines)

    refused(ledger_app, ask_return("O-1"), "GOODS_EXCLUDED_FROM_NO_REASON_RETURN", "CPL 25")
    assert ledger_app.execute(ask_return("O-1", kind="quality")).events == ["order/ReturnRequested"]


@pytest.mark.parametrize("region", ["CN-HK", "CN-MO", "CN-TW", "US-CA"])
def test_after_sales_outside_the_mainland_is_refused(
    ledger_app: Ledger, clock: ManualClock, region: str
) -> None:
    delivered(ledger_app, clock, "O-1")

    for kind in ("no_reason", "quality"):
        refused(
            ledger_app, ask_return("O-1", kind=kind, region=region), "OUTSIDE_MAINLAND", "3.3.3"
        )


@pytest.mark.parametrize("region", ["CN-HK", "US-CA"])
def test_an_order_shipping_outside_the_mainland_is_refused(ledger_app: Ledger, region: str) -> None:
    refused(ledger_app, b.submit("O-1", shipping_region=region), "OUTSIDE_MAINLAND", "3.3.3")


# -- gifts (3.1.8) -----------------------------------------------------------------------------
def test_a_gift_not_returned_is_charged_at_its_stated_price_and_kept_from_the_refund(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    delivered(ledger_app, clock, "O-1", gifts=[GIFT, EARBUDS])
    ledger_app.execute(ask_return("O-1"))
    ledger_app.execute(receive("O-1"))

    result = ledger_app.execute(inspect("O-1", gifts_returned=["g-buds"]))

    assert result.events.count("order/GiftPriceCharged") == 1
    [charged] = events_of(ledger_app, "O-1", GiftPriceCharged)
    assert (charged.gift_id, charged.price_fen) == ("g-case", 4900)
    [refund] = events_of(ledger_app, "O-1", RefundInitiated)
    assert (refund.method, refund.amount_fen) == ("alipay", 399900 - 4900)
    assert refund.destination == "original"


def test_returning_every_gift_gives_the_full_refund(ledger_app: Ledger, clock: ManualClock) -> None:
    delivered(ledger_app, clock, "O-1", gifts=[GIFT, EARBUDS])
    ledger_app.execute(ask_return("O-1"))
    ledger_app.execute(receive("O-1"))

    result = ledger_app.execute(inspect("O-1", gifts_returned=["g-case", "g-buds"]))

    assert "order/GiftPriceCharged" not in result.events
    [refund] = events_of(ledger_app, "O-1", RefundInitiated)
    assert refund.amount_fen == 399900


def test_a_returned_gift_that_was_not_in_the_order_is_refused(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    delivered(ledger_app, clock, "O-1", gifts=[GIFT])
    ledger_app.execute(ask_return("O-1"))
    ledger_app.execute(receive("O-1"))

    refused(ledger_app, inspect("O-1", gifts_returned=["g-other"]), "GIFT_NOT_IN_ORDER", "3.1.8")


# -- quality returns and visible damage (CPL 24, 3.2.3) ----------------------------------------
def test_a_quality_return_after_signing_is_allowed_with_shipping_paid_by_the_seller(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    delivered(ledger_app, clock, "O-1")
    clock.advance(timedelta(days=60))  # long past the no-reason window

    ledger_app.execute(ask_return("O-1", kind="quality"))

    [requested] = events_of(ledger_app, "O-1", ReturnRequested)
    assert (requested.kind, requested.shipping_paid_by) == ("quality", "seller")


def test_a_no_reason_return_is_shipped_at_the_users_cost(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    delivered(ledger_app, clock, "O-1")

    ledger_app.execute(ask_return("O-1"))

    [requested] = events_of(ledger_app, "O-1", ReturnRequested)
    assert (requested.kind, requested.shipping_paid_by) == ("no_reason", "user")


def test_a_claim_of_visible_damage_is_recorded_with_the_accepted_appearance(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    delivered(ledger_app, clock, "O-1")
    clock.advance(timedelta(days=2))

    ledger_app.execute(ask_return("O-1", kind="quality", visible_damage_claimed=True))

    [requested] = events_of(ledger_app, "O-1", ReturnRequested)
    assert requested.visible_damage_claimed is True
    assert requested.appearance_accepted_at_signing is True


# -- refund due within 7 days of receipt (7D art. 14) ------------------------------------------
def test_the_refund_is_due_seven_days_after_the_goods_come_back(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    delivered(ledger_app, clock, "O-1")
    clock.advance(timedelta(days=3))
    ledger_app.execute(ask_return("O-1"))
    clock.advance(timedelta(days=4, hours=5))
    received_at = clock.now()
    ledger_app.execute(receive("O-1"))
    clock.advance(timedelta(days=2))  # inspected two days later: the due date does not move

    ledger_app.execute(inspect("O-1"))

    [receipt] = events_of(ledger_app, "O-1", ReturnReceived)
    [refund] = events_of(ledger_app, "O-1", RefundInitiated)
    assert receipt.refund_due_by == received_at + timedelta(days=7)
    assert refund.due_by == received_at + timedelta(days=7)


# -- completion and retention (ECL 31) ---------------------------------------------------------
def test_completion_is_refused_while_the_window_is_open_and_allowed_when_it_ends(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    signed_at = utc(2026, 3, 2, 15, 30)  # 23:30 in Shanghai
    window_end = utc(2026, 3, 9, 16, 0)
    delivered(ledger_app, clock, "O-1", at=signed_at)

    refused(ledger_app, complete("O-1"), "TRANSACTION_NOT_COMPLETE", "ECL 31")
    clock.set(window_end - MICRO)
    refused(ledger_app, complete("O-1"), "TRANSACTION_NOT_COMPLETE", "ECL 31")
    clock.set(window_end)
    ledger_app.execute(complete("O-1"))

    [done] = events_of(ledger_app, "O-1", TransactionCompleted)
    assert done.completed_at == window_end
    # 10 March 00:00 in Shanghai, three years on: 10 March 2029 00:00 in Shanghai.
    assert done.retain_until == utc(2029, 3, 9, 16, 0)
    refused(ledger_app, complete("O-1"), "TRANSACTION_ALREADY_COMPLETED", "ECL 31")


def test_cancelling_a_completed_transaction_says_it_is_completed(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    """Neither mutual termination nor a return is open after completion: the refusal says
    the transaction is complete instead of pointing at them (issue 9)."""
    delivered(ledger_app, clock, "O-1", at=utc(2026, 3, 2, 15, 30))
    clock.set(utc(2026, 3, 9, 16, 0))
    ledger_app.execute(complete("O-1"))

    error = refused(
        ledger_app, b.order_cmd("cancel_order", "O-1"), "TRANSACTION_ALREADY_COMPLETED", "ECL 31"
    )
    assert "complete" in error.message
    assert "termination" not in error.message and "return" not in error.message


def test_completion_waits_for_an_open_return_and_its_refund(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    delivered(ledger_app, clock, "O-1")
    clock.advance(timedelta(days=20))  # the no-reason window is over
    ledger_app.execute(ask_return("O-1", kind="quality"))
    refused(ledger_app, complete("O-1"), "TRANSACTION_NOT_COMPLETE", "ECL 31")
    ledger_app.execute(receive("O-1"))
    refused(ledger_app, complete("O-1"), "TRANSACTION_NOT_COMPLETE", "ECL 31")
    ledger_app.execute(inspect("O-1"))
    refused(ledger_app, complete("O-1"), "TRANSACTION_NOT_COMPLETE", "ECL 31")

    clock.advance(timedelta(days=1))
    refunded_at = clock.now()
    assert refunded_at == utc(2026, 3, 23, 1, 0)
    [refund] = events_of(ledger_app, "O-1", RefundInitiated)
    ledger_app.execute(b.order_cmd("complete_refund", "O-1", refund_id=refund.refund_id))
    clock.advance(timedelta(hours=1))
    ledger_app.execute(complete("O-1"))

    [done] = events_of(ledger_app, "O-1", TransactionCompleted)
    assert done.completed_at == refunded_at
    assert done.retain_until == utc(2029, 3, 23, 1, 0)


def test_an_order_closed_before_delivery_completes_once_its_refunds_are_done(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    ledger_app.execute(b.submit("O-1"))
    ledger_app.execute(b.pay("O-1"))
    ledger_app.execute(b.order_cmd("declare_stock_shortage", "O-1", skus=["PHONE-14"]))
    ledger_app.execute(b.order_cmd("resolve_stock_shortage", "O-1", resolution="refund"))
    refused(ledger_app, complete("O-1"), "TRANSACTION_NOT_COMPLETE", "ECL 31")

    clock.advance(timedelta(days=2))
    [refund] = events_of(ledger_app, "O-1", RefundInitiated)
    ledger_app.execute(b.order_cmd("complete_refund", "O-1", refund_id=refund.refund_id))
    ledger_app.execute(complete("O-1"))

    [done] = events_of(ledger_app, "O-1", TransactionCompleted)
    assert done.completed_at == clock.now()


def test_completion_on_29_february_in_china_is_kept_until_28_february(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    """07:00 on 29 Feb 2028 in Shanghai is still 28 Feb in UTC: the China date counts."""
    clock.set(utc(2028, 2, 28, 23, 0))
    ledger_app.execute(b.submit("O-1"))
    ledger_app.execute(b.order_cmd("cancel_order", "O-1"))  # unpaid: nothing to refund

    ledger_app.execute(complete("O-1"))

    [done] = events_of(ledger_app, "O-1", TransactionCompleted)
    assert done.completed_at == utc(2028, 2, 28, 23, 0)
    # 28 Feb 2031 07:00 in Shanghai (a UTC count would give 28 Feb 23:00 UTC = 1 March there).
    assert done.retain_until == utc(2031, 2, 27, 23, 0)


def test_a_window_ending_at_24_00_on_28_february_is_kept_until_24_00_on_28_february(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    """Signed 21 Feb 2028 in Shanghai: the window's last day is 28 Feb, ending at 24:00
    (stored as 29 Feb 00:00). Three years from that day is 24:00 on 28 Feb 2031, which is
    1 March 00:00 there; reading the end as 29 Feb would keep it a day short (28 Feb 00:00)."""
    clock.set(utc(2028, 2, 21, 2, 0))
    delivered(ledger_app, clock, "O-1")
    clock.set(utc(2028, 2, 28, 16, 0))

    ledger_app.execute(complete("O-1"))

    [done] = events_of(ledger_app, "O-1", TransactionCompleted)
    assert done.completed_at == utc(2028, 2, 28, 16, 0)
    assert done.retain_until == utc(2031, 2, 28, 16, 0)
