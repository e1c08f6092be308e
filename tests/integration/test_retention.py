"""The personal-data lifecycle's first steps (issue 11, items 1, 2 recorded, 8, 11), through the
application on both backends with a moved clock: retention schedules on the data subject's
stream, a late after-sales case moving them, legal holds and ``check_erasable``, the
restriction recorded on termination, and the retention audit trail.

Times are China time (Asia/Shanghai, UTC+8) unless said; the clock starts 2 March 2026 09:00.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eventsourcing.application import AggregateNotFoundError

from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.domain.china_time import CHINA
from ledger.domain.context import Actor
from ledger.domain.data_subject import (
    DataSubject,
    ProcessingRestricted,
    RetentionRequired,
    RetentionScheduled,
    check_erasable,
)
from ledger.domain.errors import RuleViolation
from ledger.domain.ids import data_subject_id
from ledger.domain.order.events import RefundInitiated, TransactionCompleted, TransactionReopened
from projections.engine import Runtime
from projections.queries import ReadModels
from tests import builders as b
from tests.checks import events_of, refused, run
from tests.integration.test_projections import assert_same_as_rebuild, catch_up
from tests.integration.test_returns import MICRO, ask_return, complete, delivered, inspect, receive

ADMIN = Actor("0a1b2c3d4e5f", "admin")
LOCAL = {"key_id": None, "role": "local"}


@pytest.fixture
def trail(backend: str) -> Iterator[ReadModels]:
    """The read models on ``backend`` (the retention trail among them)."""
    with closing(ReadModels.open(backend)) as opened:
        yield opened


def shanghai(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA)


def subject_of(ledger: Ledger, subject_id: str = "acct-1") -> DataSubject | None:
    """The subject's lifecycle stream as stored now (None: it has none)."""
    try:
        found: DataSubject = ledger.app.repository.get(data_subject_id(subject_id))
    except AggregateNotFoundError:
        return None
    return found


def schedules(ledger: Ledger, subject_id: str = "acct-1") -> list[tuple[Any, ...]]:
    found = events_of(ledger, data_subject_id(subject_id), RetentionScheduled)
    return [(e.order_no, e.cause, e.completed_at, e.retain_until, e.case_id) for e in found]


def hold(reference: str, reason: str = "dispute", subject_id: str = "acct-1") -> dict[str, Any]:
    return b.other("place_legal_hold", subject_id=subject_id, reference=reference, reason=reason)


def release(reference: str, subject_id: str = "acct-1") -> dict[str, Any]:
    return b.other("release_legal_hold", subject_id=subject_id, reference=reference)


def completed_unpaid(ledger: Ledger, order_no: str, **over: Any) -> datetime:
    """Submitted, cancelled unpaid and completed now; its retain_until."""
    ledger.execute(b.submit(order_no, **over))
    ledger.execute(b.order_cmd("cancel_order", order_no))
    ledger.execute(complete(order_no))
    [done] = events_of(ledger, order_no, TransactionCompleted)
    return done.retain_until  # type: ignore[no-any-return]


def retention_refusal(ledger: Ledger, at: datetime) -> RetentionRequired:
    with pytest.raises(RetentionRequired) as caught:
        check_erasable(subject_of(ledger), at)
    assert (caught.value.code, caught.value.clause) == ("RETENTION_REQUIRED", "ECL 31")
    return caught.value


# -- the schedule (item 1) -----------------------------------------------------------------------
def test_a_completion_on_29_february_is_scheduled_on_the_subject_until_28_february(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    clock.set(shanghai(2028, 2, 29, 7, 0))
    until = completed_unpaid(ledger_app, "O-1")

    assert until == shanghai(2031, 2, 28, 7, 0)
    assert schedules(ledger_app) == [
        ("O-1", "completion", shanghai(2028, 2, 29, 7, 0), until, None)
    ]
    [scheduled] = events_of(ledger_app, data_subject_id("acct-1"), RetentionScheduled)
    assert scheduled.actor == LOCAL
    assert retention_refusal(ledger_app, until - MICRO).retain_until == until
    check_erasable(subject_of(ledger_app), until)


def test_a_window_ending_at_24_00_on_28_february_is_kept_until_24_00_on_28_february(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    """Signed 21 Feb 2025: the window's last day is 28 Feb, ending 24:00 (1 March 00:00).
    Three years from that day end at 24:00 on 28 Feb 2028, the first instant of 29 Feb in
    that leap year: not 1 March, as counting from the stored 1 March would give."""
    clock.set(shanghai(2025, 2, 21, 10, 0))
    delivered(ledger_app, clock, "O-1")
    window_end = shanghai(2025, 3, 1)
    clock.set(window_end - MICRO)
    refused(ledger_app, complete("O-1"), "TRANSACTION_NOT_COMPLETE", "ECL 31")
    clock.set(window_end)
    ledger_app.execute(complete("O-1"))

    [done] = events_of(ledger_app, "O-1", TransactionCompleted)
    assert (done.completed_at, done.retain_until) == (window_end, shanghai(2028, 2, 29))
    refusal = retention_refusal(ledger_app, shanghai(2028, 2, 29) - MICRO)
    assert "until 2028-02-28 24:00 China time" in refusal.message
    check_erasable(subject_of(ledger_app), shanghai(2028, 2, 29))


def test_a_quality_case_opened_after_completion_moves_retain_until_twice(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    """Opening the case moves it to at least three years from the opening; the case's end
    (its refund) completes the transaction again, three years from then."""
    delivered(ledger_app, clock, "O-1")  # signed 2 March 09:00: the window ends 10 March 00:00
    clock.set(shanghai(2026, 3, 10))
    ledger_app.execute(complete("O-1"))
    first_until = shanghai(2029, 3, 10)
    clock.set(shanghai(2026, 5, 4, 15, 0))  # a quality claim, 55 days on (CPL 24)

    opened = run(ledger_app, ask_return("O-1", kind="quality"))

    assert opened.events == [
        "order/TransactionReopened",
        "order/ReturnRequested",
        "data-subject/RetentionScheduled",
    ]
    [reopened] = events_of(ledger_app, "O-1", TransactionReopened)
    assert (reopened.return_id, reopened.retain_until) == ("r1", shanghai(2029, 5, 4, 15, 0))
    refusal = retention_refusal(ledger_app, shanghai(2029, 5, 5))  # past it: the case is open
    assert refusal.retain_until == shanghai(2029, 5, 4, 15, 0)
    assert "at least until 2029-05-04 15:00" in refusal.message
    refused(ledger_app, complete("O-1"), "TRANSACTION_NOT_COMPLETE", "ECL 31")

    clock.advance(timedelta(days=3))
    ledger_app.execute(receive("O-1"))
    ledger_app.execute(inspect("O-1"))
    clock.advance(timedelta(days=2))
    refund_done = clock.now()
    [refund] = events_of(ledger_app, "O-1", RefundInitiated)
    ledger_app.execute(b.order_cmd("complete_refund", "O-1", refund_id=refund.refund_id))
    clock.advance(timedelta(hours=1))
    ledger_app.execute(complete("O-1"))

    final_until = shanghai(2029, 5, 9, 15, 0)
    assert [e.retain_until for e in events_of(ledger_app, "O-1", TransactionCompleted)] == [
        first_until,
        final_until,
    ]
    assert schedules(ledger_app) == [
        ("O-1", "completion", shanghai(2026, 3, 10), first_until, None),
        ("O-1", "after_sales_case", None, shanghai(2029, 5, 4, 15, 0), "r1"),
        ("O-1", "completion", refund_done, final_until, None),
    ]
    assert retention_refusal(ledger_app, final_until - MICRO).retain_until == final_until
    check_erasable(subject_of(ledger_app), final_until)
    no_reason = ask_return("O-1", return_id="r2")
    refused(ledger_app, no_reason, "TRANSACTION_ALREADY_COMPLETED", "ECL 31")


# -- legal holds (item 8) ------------------------------------------------------------------------
def test_a_hold_blocks_erasure_even_after_retention_until_every_hold_is_released(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    until = completed_unpaid(ledger_app, "O-1")
    after_retention = until + timedelta(days=1)
    ledger_app.execute(hold("CASE-1"), actor=ADMIN)
    ledger_app.execute(hold("INV-7", "investigation"), actor=ADMIN)

    for released in ([], ["CASE-1"]):
        for reference in released:
            ledger_app.execute(release(reference), actor=ADMIN)
        with pytest.raises(RuleViolation) as caught:
            check_erasable(subject_of(ledger_app), after_retention)
        assert (caught.value.code, caught.value.clause) == ("LEGAL_HOLD", "PIPL 47")

    ledger_app.execute(release("INV-7"), actor=ADMIN)
    check_erasable(subject_of(ledger_app), after_retention)
    assert retention_refusal(ledger_app, until - MICRO).retain_until == until


def test_a_hold_repeated_is_one_hold_and_another_reason_under_its_reference_is_refused(
    ledger_app: Ledger,
) -> None:
    first = run(ledger_app, hold("CASE-1"))
    assert first.events == ["data-subject/Registered", "data-subject/LegalHoldPlaced"]
    head = ledger_app.head_position()

    again = ledger_app.execute(hold("CASE-1"))

    assert again.duplicate and (again.position, again.events) == (first.position, first.events)
    assert ledger_app.head_position() == head
    refused(ledger_app, hold("CASE-1", "investigation"), "LEGAL_HOLD_REFERENCE_REUSED", "PIPL 47")
    refused(ledger_app, release("CASE-2"), "NOT_FOUND", "")
    released = run(ledger_app, release("CASE-1"))
    assert released.events == ["data-subject/LegalHoldReleased"]
    assert ledger_app.execute(release("CASE-1")).duplicate
    assert run(ledger_app, hold("CASE-1", "investigation")).events == [
        "data-subject/LegalHoldPlaced"
    ]


# -- restriction recorded on termination (item 2, recording only) ---------------------------
def test_terminating_during_retention_restricts_until_the_last_retention_ends(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    """acct-1 has a completed order (its retention runs) and an order not yet completed;
    acct-2 has nothing completed when it is terminated, so nothing is restricted until its
    order completes."""
    first_until = completed_unpaid(ledger_app, "O-1")
    ledger_app.execute(b.submit("O-2"))
    ledger_app.execute(b.submit("P-1", account_no="acct-2"))
    clock.advance(timedelta(days=10))

    terminated = run(ledger_app, b.other("terminate_account", account_no="acct-1", ground="6.1(7)"))
    run(ledger_app, b.other("terminate_account", account_no="acct-2", ground="6.1(7)"))

    assert terminated.events == ["account/Registered", "account/Terminated", restricted_topic()]
    assert restrictions(ledger_app, "acct-1") == [("account_cancelled", first_until)]
    assert subject_of(ledger_app, "acct-2") is None
    clock.advance(timedelta(days=1))
    for order_no in ("O-2", "P-1"):  # closed (unpaid) after the termination, then completed
        ledger_app.execute(b.order_cmd("cancel_order", order_no))
        ledger_app.execute(complete(order_no))
    later = shanghai(2029, 3, 13, 9, 0)  # three years from the closure, 13 March 2026 09:00
    assert restrictions(ledger_app, "acct-1") == [
        ("account_cancelled", first_until),
        ("account_cancelled", later),
    ]
    assert restrictions(ledger_app, "acct-2") == [("account_cancelled", later)]


def restricted_topic() -> str:
    return str(ProcessingRestricted.TOPIC).removeprefix("mall-ledger/")


def restrictions(ledger: Ledger, subject_id: str) -> list[tuple[str, datetime]]:
    found = events_of(ledger, data_subject_id(subject_id), ProcessingRestricted)
    assert all(e.actor == LOCAL for e in found)
    return [(e.basis, e.until) for e in found]


# -- the retention audit trail (item 11) -------------------------------------------------------
def test_the_trail_shows_every_step_with_its_time_actor_basis_and_reference(
    ledger_app: Ledger, clock: ManualClock, rt: Runtime, trail: ReadModels
) -> None:
    delivered(ledger_app, clock, "O-1")
    clock.set(shanghai(2026, 3, 10))
    ledger_app.execute(complete("O-1"))  # scheduled
    clock.advance(timedelta(days=1))
    ledger_app.execute(hold("CASE-1"), actor=ADMIN)  # hold_placed
    clock.advance(timedelta(days=1))
    ledger_app.execute(b.other("terminate_account", account_no="acct-1", ground="6.1(7)"))
    clock.advance(timedelta(days=30))
    case_opened = clock.now()
    ledger_app.execute(ask_return("O-1", kind="quality"))  # extended, restricted again
    ledger_app.execute(release("CASE-1"), actor=ADMIN)  # hold_released
    position = catch_up(rt)

    steps = trail.retention_steps("acct-1", after=position)

    admin = ADMIN.as_dict()
    assert [(s["step"], s["order_no"], s["basis"], s["reference"], s["actor"]) for s in steps] == [
        ("scheduled", "O-1", "ECL 31", None, LOCAL),
        ("hold_placed", None, "dispute", "CASE-1", admin),
        ("restricted", None, "account_cancelled", None, LOCAL),
        ("extended", "O-1", "ECL 31", "r1", LOCAL),
        ("restricted", None, "account_cancelled", None, LOCAL),
        ("hold_released", None, "dispute", "CASE-1", admin),
    ]
    least = shanghai(2029, 4, 11)
    assert [s["at"] for s in steps[3:]] == [case_opened] * 3
    least_text = least.astimezone(UTC).isoformat()
    assert steps[3]["detail"]["retain_until"] == least_text
    assert steps[4]["detail"] == {"law": "PIPL 47 para 2", "until": least_text}
    subject = trail.subject_retention("acct-1")
    assert subject is not None and subject["holds"] == []
    assert (subject["restricted_basis"], subject["restricted_until"]) == (
        "account_cancelled",
        least,
    )
    assert subject["retained_until"] == least
    order = trail.retention("O-1")
    assert order is not None
    assert (order["completed_at"], order["retain_until"]) == (None, least)
    assert (order["reopened_case"], order["reopened_at"]) == ("r1", case_opened)
    assert_same_as_rebuild(rt, position)


def test_a_held_subject_shows_its_hold_with_who_placed_it(
    ledger_app: Ledger, clock: ManualClock, rt: Runtime, trail: ReadModels
) -> None:
    """A subject known only by its hold (no order) still has a row and a trail."""
    placed_at = clock.now()
    ledger_app.execute(hold("CASE-9", "investigation", subject_id="acct-9"), actor=ADMIN)
    position = catch_up(rt)

    subject = trail.subject_retention("acct-9", after=position)

    assert subject is not None
    assert subject["holds"] == [
        {
            "reference": "CASE-9",
            "reason": "investigation",
            "placed_at": placed_at.isoformat(),
            "actor": ADMIN.as_dict(),
        }
    ]
    assert [s["step"] for s in trail.retention_steps("acct-9")] == ["hold_placed"]
    assert trail.retention_due(shanghai(2099, 1, 1)) == []
    assert_same_as_rebuild(rt, position)
