"""Accounts (DOMAIN.md section 6, agreement 6.1 and 6.2), through the application.

A restricted or terminated account may not order (6.1); for its open orders the seller
decides, order by order, to close or continue (6.2), and a closure on an account ground
needs that recorded "close" decision.
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger.application import Ledger
from ledger.domain.account import OpenOrderDispositionDecided
from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.domain.ids import account_id
from tests import builders as b
from tests.checks import refused

ACCOUNT_GROUNDS = ("account_restricted", "account_terminated")


def restrict(account_no: str = "acct-1", ground: str = "6.1(7)") -> dict[str, Any]:
    return b.other("restrict_account", account_no=account_no, ground=ground)


def terminate(account_no: str = "acct-1", ground: str = "6.1(3)") -> dict[str, Any]:
    return b.other("terminate_account", account_no=account_no, ground=ground)


def decide(order_no: str, disposition: str, account_no: str = "acct-1") -> dict[str, Any]:
    return b.other(
        "decide_open_order", account_no=account_no, order_no=order_no, disposition=disposition
    )


def close(order_no: str, ground: str) -> dict[str, Any]:
    return b.order_cmd("close_order", order_no, ground=ground)


def paid(ledger: Ledger, order_no: str, **over: Any) -> None:
    ledger.execute(b.submit(order_no, **over))
    ledger.execute(b.pay(order_no))


# -- 6.1: no new orders ------------------------------------------------------------------------
@pytest.mark.parametrize("ground", ["6.1(1)", "6.1(3)", "6.1(6)", "6.1(7)", "6.1(8)"])
def test_a_restricted_account_may_not_submit_an_order(ledger_app: Ledger, ground: str) -> None:
    assert "account/Restricted" in ledger_app.execute(restrict(ground=ground)).events

    refused(ledger_app, b.submit("O-1"), "ACCOUNT_RESTRICTED", "6.1")


def test_a_terminated_account_may_not_submit_an_order(ledger_app: Ledger) -> None:
    ledger_app.execute(terminate())
    head = ledger_app.head_position()

    with pytest.raises(LedgerError) as caught:
        ledger_app.execute(b.submit("O-1"))

    assert caught.value.code == "ACCOUNT_RESTRICTED"
    assert ledger_app.head_position() == head


def test_a_terminated_account_is_refused_citing_6_1(ledger_app: Ledger) -> None:
    ledger_app.execute(terminate())

    refused(ledger_app, b.submit("O-1"), "ACCOUNT_RESTRICTED", "6.1")


def test_restriction_blocks_only_its_own_account(ledger_app: Ledger) -> None:
    ledger_app.execute(restrict("acct-bad"))

    result = ledger_app.execute(b.submit("O-1", account_no="acct-good"))

    assert result.events == ["order/Submitted"]


# -- 6.2: the seller's decision per open order -------------------------------------------------
@pytest.mark.parametrize(
    ("block", "ground", "clause"),
    [
        (restrict, "account_restricted", "6.1"),
        (terminate, "account_terminated", "6.2"),
    ],
)
def test_a_decision_to_close_lets_the_seller_close_on_the_account_ground(
    ledger_app: Ledger, block: Any, ground: str, clause: str
) -> None:
    paid(ledger_app, "O-1")
    ledger_app.execute(block())
    decision = ledger_app.execute(decide("O-1", "close"))
    assert decision.events == ["account/OpenOrderDispositionDecided"]

    result = ledger_app.execute(close("O-1", ground))

    # A formed contract is terminated: everything paid goes back, and the user is told.
    assert result.events == ["order/Closed", "order/RefundInitiated", "order/UserNotified"]
    order = ledger_app.order("O-1")
    assert (order.closed_ground, order.closed_clause) == (ground, clause)
    assert order.pending_fen("alipay") == 399900


def test_the_decision_is_recorded_per_order(ledger_app: Ledger) -> None:
    paid(ledger_app, "O-1")
    paid(ledger_app, "O-2")
    ledger_app.execute(restrict())
    ledger_app.execute(decide("O-1", "close"))
    ledger_app.execute(decide("O-2", "continue"))

    decided = [
        (e.order_no, e.disposition)
        for e in ledger_app.app.events.get(account_id("acct-1"))
        if isinstance(e, OpenOrderDispositionDecided)
    ]

    assert decided == [("O-1", "close"), ("O-2", "continue")]
    assert ledger_app.execute(close("O-1", "account_restricted")).events[0] == "order/Closed"
    refused(ledger_app, close("O-2", "account_restricted"), "DISPOSITION_NOT_CLOSE", "6.2")


@pytest.mark.parametrize("ground", ACCOUNT_GROUNDS)
def test_closing_on_an_account_ground_without_a_decision_is_refused(
    ledger_app: Ledger, ground: str
) -> None:
    paid(ledger_app, "O-1")
    ledger_app.execute(terminate() if ground == "account_terminated" else restrict())

    refused(ledger_app, close("O-1", ground), "DISPOSITION_NOT_CLOSE", "6.2")


@pytest.mark.parametrize("ground", ACCOUNT_GROUNDS)
def test_closing_an_order_the_seller_decided_to_continue_is_refused(
    ledger_app: Ledger, ground: str
) -> None:
    paid(ledger_app, "O-1")
    ledger_app.execute(terminate())
    ledger_app.execute(decide("O-1", "continue"))

    refused(ledger_app, close("O-1", ground), "DISPOSITION_NOT_CLOSE", "6.2")


def test_closing_on_an_account_ground_for_an_account_in_good_standing_is_refused(
    ledger_app: Ledger,
) -> None:
    paid(ledger_app, "O-1")

    refused(ledger_app, close("O-1", "account_restricted"), "ACCOUNT_NOT_RESTRICTED", "6.1")


def test_a_decision_for_another_accounts_order_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app, "O-1", account_no="acct-1")
    ledger_app.execute(restrict("acct-2"))

    refused(ledger_app, decide("O-1", "close", account_no="acct-2"), "ORDER_NOT_OF_ACCOUNT", "6.2")
    refused(ledger_app, close("O-1", "account_restricted"), "ACCOUNT_NOT_RESTRICTED", "6.1")


def test_a_decision_for_an_account_in_good_standing_is_refused(ledger_app: Ledger) -> None:
    paid(ledger_app, "O-1")

    refused(ledger_app, decide("O-1", "close"), "ACCOUNT_NOT_RESTRICTED", "6.2")


def test_closing_as_terminated_when_the_account_was_only_restricted_is_refused(
    ledger_app: Ledger,
) -> None:
    paid(ledger_app, "O-1")
    ledger_app.execute(restrict())
    ledger_app.execute(decide("O-1", "close"))
    head = ledger_app.head_position()

    with pytest.raises(LedgerError):
        ledger_app.execute(close("O-1", "account_terminated"))

    assert ledger_app.head_position() == head


def test_terminating_on_6_1_5_needs_the_refusal_threshold_too(ledger_app: Ledger) -> None:
    refused(ledger_app, terminate(ground="6.1(5)"), "REFUSAL_THRESHOLD_NOT_MET", "6.1(5)")


def test_terminating_without_one_of_the_eight_grounds_is_refused(ledger_app: Ledger) -> None:
    head = ledger_app.head_position()

    with pytest.raises(InvalidCommand) as caught:
        ledger_app.execute(terminate(ground="felt like it"))

    assert caught.value.field == "terminate_account.ground"
    assert ledger_app.head_position() == head
