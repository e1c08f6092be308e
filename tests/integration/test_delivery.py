"""Delivery (DOMAIN.md section 4, agreement 3.2.x and 6.1(5)), through the application."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.domain.order.events import Delivered, DeliveryRefused, Shipped
from tests import builders as b
from tests.checks import events_of, refused

ATTEMPT_GROUNDS = {
    "bad_address": "3.2.4(1)",
    "nobody_to_sign": "3.2.4(3)",
    "force_majeure": "3.2.4(4)",
}


def shipped(ledger: Ledger, order_no: str, **submit_over: Any) -> None:
    ledger.execute(b.submit(order_no, **submit_over))
    ledger.execute(b.pay(order_no))
    ledger.execute(b.ship(order_no))


def call(order_no: str, answered: bool) -> dict[str, Any]:
    return b.order_cmd("record_contact_call", order_no, answered=answered)


def close(order_no: str, ground: str) -> dict[str, Any]:
    return b.order_cmd("close_order", order_no, ground=ground)


def refusal(order_no: str, quality_reason: bool) -> dict[str, Any]:
    return b.order_cmd(
        "refuse_delivery", order_no, quality_reason=quality_reason, reason="not wanted"
    )


def restrict_for_refusals(account_no: str = "acct-1") -> dict[str, Any]:
    return b.other("restrict_account", account_no=account_no, ground="6.1(5)")


# -- shipping ----------------------------------------------------------------------------------
def test_shipping_an_unpaid_order_is_refused(ledger_app: Ledger) -> None:
    ledger_app.execute(b.submit("O-1"))

    refused(ledger_app, b.ship("O-1"), "NOT_PAID", "3.1.3")


def test_shipping_a_partly_paid_order_is_refused(ledger_app: Ledger) -> None:
    ledger_app.execute(b.submit("O-1"))
    ledger_app.execute(b.pay("O-1", amount_fen=100000))

    refused(ledger_app, b.ship("O-1"), "NOT_PAID", "3.1.3")
    ledger_app.execute(b.pay("O-1", amount_fen=299900, method="card"))
    assert ledger_app.execute(b.ship("O-1")).events == ["order/Shipped"]


def test_shipped_keeps_the_estimate_and_the_promise_apart(ledger_app: Ledger) -> None:
    estimate = datetime(2026, 3, 5, 18, 0, tzinfo=UTC)
    promise = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    for no in ("O-1", "O-2"):
        ledger_app.execute(b.submit(no))
        ledger_app.execute(b.pay(no))
    ledger_app.execute(b.ship("O-1", estimated_delivery=estimate.isoformat()))
    ledger_app.execute(
        b.ship(
            "O-2", estimated_delivery=estimate.isoformat(), promised_delivery=promise.isoformat()
        )
    )

    [estimate_only] = events_of(ledger_app, "O-1", Shipped)
    assert estimate_only.estimated_delivery == estimate
    assert estimate_only.promised_delivery is None
    [both] = events_of(ledger_app, "O-2", Shipped)
    assert (both.estimated_delivery, both.promised_delivery) == (estimate, promise)


# -- delivered: who may sign -------------------------------------------------------------------
def test_each_authorised_signer_delivers_and_accepts_the_appearance(ledger_app: Ledger) -> None:
    for relation in ("self", "family", "designated_recipient", "agent"):
        no = f"O-{relation}"
        shipped(ledger_app, no)

        assert ledger_app.execute(b.deliver(no, relation)).events == ["order/Delivered"]

        [delivered] = events_of(ledger_app, no, Delivered)
        assert delivered.signer_relation == relation
        assert delivered.appearance_accepted is True
        assert ledger_app.order(no).is_delivered


@pytest.mark.parametrize("relation", ["neighbour", "courier", "doorman"])
def test_a_signer_outside_the_four_relations_is_refused(ledger_app: Ledger, relation: str) -> None:
    shipped(ledger_app, "O-1")

    refused(ledger_app, b.deliver("O-1", relation), "SIGNER_NOT_AUTHORISED", "3.2.3")
    assert not ledger_app.order("O-1").is_delivered


def test_delivering_an_order_that_has_not_shipped_is_refused(ledger_app: Ledger) -> None:
    ledger_app.execute(b.submit("O-1"))
    ledger_app.execute(b.pay("O-1"))

    refused(ledger_app, b.deliver("O-1"), "NOT_SHIPPED", "3.2.3")


# -- closure on 3.2.4 grounds ------------------------------------------------------------------
def test_closing_on_no_answer_needs_two_unanswered_calls(ledger_app: Ledger) -> None:
    shipped(ledger_app, "O-1")
    refused(ledger_app, close("O-1", "no_answer"), "TWO_CALLS_REQUIRED", "3.2.4(2)")

    ledger_app.execute(call("O-1", answered=False))
    refused(ledger_app, close("O-1", "no_answer"), "TWO_CALLS_REQUIRED", "3.2.4(2)")

    ledger_app.execute(call("O-1", answered=False))
    result = ledger_app.execute(close("O-1", "no_answer"))

    assert result.events[0] == "order/Closed"
    order = ledger_app.order("O-1")
    assert (order.closed_ground, order.closed_clause) == ("no_answer", "3.2.4(2)")


def test_answered_calls_do_not_count_toward_the_two(ledger_app: Ledger) -> None:
    shipped(ledger_app, "O-1")
    for answered in (True, True, False, True):
        ledger_app.execute(call("O-1", answered=answered))

    refused(ledger_app, close("O-1", "no_answer"), "TWO_CALLS_REQUIRED", "3.2.4(2)")


def test_a_failed_attempt_for_no_answer_does_not_replace_the_two_calls(
    ledger_app: Ledger,
) -> None:
    shipped(ledger_app, "O-1")
    ledger_app.execute(b.order_cmd("record_delivery_failure", "O-1", reason="no_answer"))
    ledger_app.execute(call("O-1", answered=False))

    refused(ledger_app, close("O-1", "no_answer"), "TWO_CALLS_REQUIRED", "3.2.4(2)")


@pytest.mark.parametrize("ground", list(ATTEMPT_GROUNDS))
def test_closing_on_an_attempt_ground_needs_a_failed_attempt_of_that_reason(
    ledger_app: Ledger, ground: str
) -> None:
    clause = ATTEMPT_GROUNDS[ground]
    shipped(ledger_app, "O-1")
    refused(ledger_app, close("O-1", ground), "DELIVERY_FAILURE_NOT_RECORDED", clause)

    other = next(g for g in ATTEMPT_GROUNDS if g != ground)
    ledger_app.execute(b.order_cmd("record_delivery_failure", "O-1", reason=other))
    refused(ledger_app, close("O-1", ground), "DELIVERY_FAILURE_NOT_RECORDED", clause)

    ledger_app.execute(b.order_cmd("record_delivery_failure", "O-1", reason=ground))
    result = ledger_app.execute(close("O-1", ground))

    assert result.events[0] == "order/Closed"
    order = ledger_app.order("O-1")
    assert (order.closed_ground, order.closed_clause) == (ground, clause)


@pytest.mark.parametrize(
    ("ground", "clause"),
    [("no_answer", "3.2.4(2)"), ("bad_address", "3.2.4(1)"), ("delivery_refused", "3.2.3")],
)
def test_closing_after_delivery_is_refused(ledger_app: Ledger, ground: str, clause: str) -> None:
    shipped(ledger_app, "O-1")
    ledger_app.execute(call("O-1", answered=False))
    ledger_app.execute(call("O-1", answered=False))
    ledger_app.execute(b.order_cmd("record_delivery_failure", "O-1", reason="bad_address"))
    ledger_app.execute(b.deliver("O-1"))

    refused(ledger_app, close("O-1", ground), "ALREADY_DELIVERED", clause)


# -- refusals to sign --------------------------------------------------------------------------
def test_a_refusal_records_whether_it_was_for_quality(ledger_app: Ledger) -> None:
    shipped(ledger_app, "O-q")
    shipped(ledger_app, "O-n")

    quality = ledger_app.execute(refusal("O-q", quality_reason=True))
    other = ledger_app.execute(refusal("O-n", quality_reason=False))

    [q] = events_of(ledger_app, "O-q", DeliveryRefused)
    [n] = events_of(ledger_app, "O-n", DeliveryRefused)
    assert (q.quality_reason, n.quality_reason) == (True, False)
    # Only the non-quality refusal counts against the account (6.1(5)).
    assert "account/NonQualityRefusalRecorded" not in quality.events
    assert "account/NonQualityRefusalRecorded" in other.events


def test_three_non_quality_refusals_in_ninety_days_allow_restricting_the_account(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    for n in range(3):
        if n:
            clock.advance(timedelta(days=44))  # refusals on days 0, 44 and 88
        shipped(ledger_app, f"O-{n}")
        ledger_app.execute(refusal(f"O-{n}", quality_reason=False))
    clock.advance(timedelta(days=1))  # day 89: the first refusal is still inside the window

    result = ledger_app.execute(restrict_for_refusals())

    assert result.events == ["account/Restricted"]
    refused(ledger_app, b.submit("O-new"), "ACCOUNT_RESTRICTED", "6.1")


def test_two_non_quality_refusals_do_not_meet_the_threshold(ledger_app: Ledger) -> None:
    for n in range(2):
        shipped(ledger_app, f"O-{n}")
        ledger_app.execute(refusal(f"O-{n}", quality_reason=False))
    # Quality refusals are the user's right and never count (6.1(5): 非因商品质量原因).
    for n in range(2, 5):
        shipped(ledger_app, f"O-{n}")
        ledger_app.execute(refusal(f"O-{n}", quality_reason=True))

    refused(ledger_app, restrict_for_refusals(), "REFUSAL_THRESHOLD_NOT_MET", "6.1(5)")


def test_an_account_with_no_refusals_cannot_be_restricted_on_6_1_5(ledger_app: Ledger) -> None:
    refused(ledger_app, restrict_for_refusals("acct-new"), "REFUSAL_THRESHOLD_NOT_MET", "6.1(5)")


def test_refusals_older_than_ninety_days_do_not_count(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    shipped(ledger_app, "O-old")
    ledger_app.execute(refusal("O-old", quality_reason=False))
    clock.advance(timedelta(days=5))
    for n in range(2):
        shipped(ledger_app, f"O-{n}")
        ledger_app.execute(refusal(f"O-{n}", quality_reason=False))
    clock.advance(timedelta(days=86))  # the first refusal is now 91 days old

    refused(ledger_app, restrict_for_refusals(), "REFUSAL_THRESHOLD_NOT_MET", "6.1(5)")
    # One more recent refusal brings it back to three in the window.
    shipped(ledger_app, "O-new")
    ledger_app.execute(refusal("O-new", quality_reason=False))
    assert ledger_app.execute(restrict_for_refusals()).events == ["account/Restricted"]


def test_refusals_of_another_account_do_not_count(ledger_app: Ledger) -> None:
    for n in range(3):
        shipped(ledger_app, f"O-{n}", account_no="acct-other")
        ledger_app.execute(refusal(f"O-{n}", quality_reason=False))

    refused(ledger_app, restrict_for_refusals("acct-1"), "REFUSAL_THRESHOLD_NOT_MET", "6.1(5)")
