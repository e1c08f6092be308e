"""Time runs forward in every stream, and a command's own time lies in a sane range
(issue 8, case 6), on both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.clock import EARLIEST_COMMAND_TIME, MAX_CLOCK_SKEW, ManualClock
from ledger.domain.errors import InvalidCommand, RuleViolation
from tests import builders as b

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def refused_before_stream(ledger: Ledger, command: dict[str, Any], at: datetime) -> str:
    """The command is refused TIME_BEFORE_STREAM and writes nothing; returns the message."""
    head = ledger.head_position()
    with pytest.raises(RuleViolation) as caught:
        ledger.execute(command, at=at)
    assert (caught.value.code, caught.value.clause) == ("TIME_BEFORE_STREAM", "ECL 31")
    assert ledger.head_position() == head, "a refused command wrote events"
    return caught.value.message


def test_a_delivery_dated_before_the_shipment_is_refused_naming_the_orders_last_time(
    ledger_app: Ledger,
) -> None:
    ledger_app.execute(b.submit("TM-1"), at=t(0))
    ledger_app.execute(b.pay("TM-1"), at=t(5))
    ledger_app.execute(b.ship("TM-1"), at=t(60 * 48))
    message = refused_before_stream(ledger_app, b.deliver("TM-1"), t(60))  # two days early
    assert "order TM-1" in message and t(60 * 48).isoformat() in message
    assert ledger_app.order("TM-1").delivered_at is None


def test_a_payment_dated_before_the_orders_submission_is_refused(ledger_app: Ledger) -> None:
    ledger_app.execute(b.submit("TM-2"), at=t(10))
    message = refused_before_stream(ledger_app, b.pay("TM-2"), t(5))
    assert t(10).isoformat() in message
    assert ledger_app.order("TM-2").paid_total_fen == 0


def test_an_event_at_the_same_time_as_the_streams_last_is_accepted(ledger_app: Ledger) -> None:
    ledger_app.execute(b.submit("TM-3"), at=t(0))
    ledger_app.execute(b.pay("TM-3"), at=t(0))
    ledger_app.execute(b.ship("TM-3"), at=t(0))
    assert ledger_app.order("TM-3").shipped


LIMIT = {"sku": "PHONE-14", "limit_qty": 5, "period_days": 30, "per_account": True}

# For each kind of stream: commands that make it at minute 10, then a command at minute 5
# that writes it, and how the refusal names the stream (never an account number).
EVERY_STREAM: dict[str, tuple[list[dict[str, Any]], Callable[[], dict[str, Any]], str]] = {
    "Order": ([b.submit("TM-O")], lambda: b.pay("TM-O"), "order TM-O"),
    "Entitlement": (
        [b.issue("TM-CPN")],
        lambda: b.submit("TM-E", coupons=["TM-CPN"]),
        "Entitlement stream",
    ),
    "Account": (
        [b.other("restrict_account", account_no="acct-tm", ground="6.1(7)")],
        lambda: b.other("terminate_account", account_no="acct-tm", ground="6.1(3)"),
        "Account stream",
    ),
    "Promotion": (
        [
            b.other(
                "define_promotion",
                promotion_no="P-TM",
                valid_from=t(0).isoformat(),
                valid_until=t(999).isoformat(),
            )
        ],
        lambda: b.other(
            "define_promotion",
            promotion_no="P-TM",
            valid_from=t(0).isoformat(),
            valid_until=t(500).isoformat(),
        ),
        "Promotion stream",
    ),
    "PurchaseLimitRule": (
        [b.other("define_purchase_limit", valid_from=t(0).isoformat(), **LIMIT)],
        lambda: b.other(
            "define_purchase_limit", valid_from=t(0).isoformat(), **{**LIMIT, "limit_qty": 3}
        ),
        "PurchaseLimitRule stream",
    ),
}


@pytest.mark.parametrize("kind", sorted(EVERY_STREAM))
def test_every_kind_of_stream_refuses_an_event_dated_before_its_last(
    ledger_app: Ledger, kind: str
) -> None:
    setup, late_command, label = EVERY_STREAM[kind]
    for command in setup:
        ledger_app.execute(command, at=t(10))
    message = refused_before_stream(ledger_app, late_command(), t(5))
    assert label in message and "acct-" not in message


def test_a_limit_counter_refuses_an_order_dated_before_its_last_count(ledger_app: Ledger) -> None:
    ledger_app.execute(
        b.other("define_purchase_limit", valid_from=t(0).isoformat(), **LIMIT), at=t(0)
    )
    ledger_app.execute(b.submit("TM-L1"), at=t(10))
    message = refused_before_stream(ledger_app, b.submit("TM-L2"), t(5))
    assert "LimitCounter stream" in message


OUT_OF_RANGE: dict[str, Callable[[], datetime]] = {
    "year-1": lambda: datetime.fromisoformat("0001-01-01T00:00:00+08:00"),  # was OverflowError
    "year-9999": lambda: datetime.fromisoformat("9999-12-31T23:59:59-08:00"),
    "before-2000": lambda: EARLIEST_COMMAND_TIME - timedelta(seconds=1),
    "after-now": lambda: datetime.now(UTC) + MAX_CLOCK_SKEW + timedelta(minutes=1),
}


@pytest.mark.parametrize("case", sorted(OUT_OF_RANGE))
def test_a_time_outside_the_sane_range_is_an_invalid_command_naming_at(
    ledger_app: Ledger, case: str
) -> None:
    with pytest.raises(InvalidCommand) as caught:
        ledger_app.execute(b.submit("TM-R"), at=OUT_OF_RANGE[case]())
    assert caught.value.field == "at"
    assert ledger_app.head_position() == 0


@pytest.mark.parametrize(
    "at",
    [EARLIEST_COMMAND_TIME, datetime(2026, 3, 2, 1, 5, tzinfo=timezone(timedelta(hours=8)))],
    ids=["the-earliest", "an-offset-within-the-range"],
)
def test_the_edges_of_the_range_are_accepted(ledger_app: Ledger, at: datetime) -> None:
    ledger_app.execute(b.submit("TM-EDGE"), at=at)
    assert ledger_app.order("TM-EDGE").created_on == at


def test_a_manual_clock_ahead_of_the_system_moves_the_latest_time_with_it(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    clock.set(datetime.now(UTC) + timedelta(days=365))
    ledger_app.execute(b.submit("TM-AHEAD"), at=clock.now() + MAX_CLOCK_SKEW)
    with pytest.raises(InvalidCommand):
        ledger_app.execute(b.submit("TM-AHEAD2"), at=clock.now() + timedelta(hours=1))


def test_api_keys_are_dated_by_the_ledgers_clock_not_the_systems(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    from ledger.api_keys import create_key, list_keys, revoke_key

    made_at = clock.now()
    first = create_key(ledger_app, "auditor", "clock-first")
    clock.advance(timedelta(minutes=5))
    second = create_key(ledger_app, "service", "clock-second")  # after the first, by this clock
    revoke_key(ledger_app, first.key_id)
    listed = {k["key_id"]: k for k in list_keys(ledger_app)}
    assert datetime.fromisoformat(str(listed[first.key_id]["created_at"])) == made_at
    assert datetime.fromisoformat(str(listed[second.key_id]["created_at"])) == clock.now()
    assert datetime.fromisoformat(str(listed[first.key_id]["revoked_at"])) == clock.now()
