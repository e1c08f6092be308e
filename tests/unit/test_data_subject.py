"""The DataSubject aggregate on its own (ledger/domain/data_subject.py): retention schedules,
legal holds, the restriction of processing and ``check_erasable``, with no storage; events
read from ``pending_events``. Times: 09:00 in Shanghai unless said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from ledger.domain.context import Actor, Ctx
from ledger.domain.data_subject import (
    DataSubject,
    LegalHoldPlaced,
    LegalHoldReleased,
    ProcessingRestricted,
    RetentionRequired,
    RetentionScheduled,
    check_erasable,
)
from ledger.domain.errors import LedgerError, NotFound, RuleViolation
from ledger.domain.repeats import RepeatedFact

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
ADMIN = Actor("0123456789ab", "admin")
_ids = count(1)


def ctx(at: datetime = T0, actor: Actor = ADMIN) -> Ctx:
    return Ctx(f"cmd-{next(_ids)}", at, actor)


def subject() -> DataSubject:
    return DataSubject.register(ctx(), "acct-1")


def scheduled(until: datetime, order_no: str = "O-1") -> DataSubject:
    found = subject()
    found.schedule_retention(ctx(), order_no, until, completed_at=T0)
    return found


def code_of(error: LedgerError) -> tuple[str, str]:
    return error.code, error.clause


# -- check_erasable --------------------------------------------------------------------------
def test_a_subject_with_nothing_recorded_is_erasable() -> None:
    check_erasable(None, T0)
    check_erasable(subject(), T0)


def test_inside_retention_erasure_is_refused_naming_the_order_and_the_day_it_ends() -> None:
    end = datetime(2029, 3, 9, 16, 0, tzinfo=UTC)  # 24:00 on 9 March 2029 in Shanghai
    record = scheduled(end)
    record.schedule_retention(ctx(), "O-2", end - timedelta(days=30), completed_at=T0)

    with pytest.raises(RetentionRequired) as caught:
        check_erasable(record, end - timedelta(microseconds=1))

    assert code_of(caught.value) == ("RETENTION_REQUIRED", "ECL 31")
    assert caught.value.retain_until == end
    assert "order O-1" in caught.value.message
    assert "2029-03-09 24:00 China time" in caught.value.message
    assert "acct-1" not in caught.value.message  # a subject id may be a phone number
    check_erasable(record, end)  # the instant the retention ends, erasure may run


def test_an_after_sales_case_after_completion_keeps_retention_running_past_its_least_date() -> None:
    least = datetime(2029, 4, 1, 1, 0, tzinfo=UTC)
    record = scheduled(datetime(2029, 3, 9, 16, 0, tzinfo=UTC))
    record.schedule_retention(ctx(), "O-1", least, completed_at=None, case_id="r1")

    with pytest.raises(RetentionRequired) as caught:
        check_erasable(record, least + timedelta(days=1))  # the case is still open

    assert caught.value.retain_until == least
    assert "at least until 2029-04-01 09:00" in caught.value.message


def test_a_hold_blocks_erasure_before_retention_is_even_asked_and_until_released() -> None:
    record = scheduled(T0 + timedelta(days=1))
    record.place_hold(ctx(), "CASE-1", "dispute")
    after_retention = T0 + timedelta(days=400)

    with pytest.raises(RuleViolation) as caught:
        check_erasable(record, after_retention)
    assert code_of(caught.value) == ("LEGAL_HOLD", "PIPL 47")
    assert "CASE-1" not in caught.value.message

    record.release_hold(ctx(), "CASE-1")
    check_erasable(record, after_retention)


def test_every_hold_must_be_released() -> None:
    record = subject()
    record.place_hold(ctx(), "CASE-1", "dispute")
    record.place_hold(ctx(), "INV-7", "investigation")
    record.release_hold(ctx(), "CASE-1")

    with pytest.raises(RuleViolation) as caught:
        check_erasable(record, T0)
    assert caught.value.code == "LEGAL_HOLD"
    assert "1 legal hold(s) (investigation)" in caught.value.message


# -- holds ----------------------------------------------------------------------------------
def test_a_hold_records_its_reference_reason_and_actor() -> None:
    record = subject()
    record.place_hold(ctx(), "CASE-1", "dispute")
    record.release_hold(ctx(), "CASE-1")

    placed, released = record.pending_events[-2:]
    assert isinstance(placed, LegalHoldPlaced) and isinstance(released, LegalHoldReleased)
    assert (placed.reference, placed.reason) == ("CASE-1", "dispute")
    assert (released.reference, released.reason) == ("CASE-1", "dispute")
    assert placed.actor == released.actor == {"key_id": "0123456789ab", "role": "admin"}


def test_placing_a_hold_again_is_a_repeat_or_with_another_reason_a_refusal() -> None:
    record = subject()
    first = ctx()
    record.place_hold(first, "CASE-1", "dispute")

    with pytest.raises(RepeatedFact) as repeat:
        record.place_hold(ctx(), "CASE-1", "dispute")
    assert repeat.value.first_command_id == first.command_id
    with pytest.raises(RuleViolation) as caught:
        record.place_hold(ctx(), "CASE-1", "investigation")
    assert code_of(caught.value) == ("LEGAL_HOLD_REFERENCE_REUSED", "PIPL 47")


def test_releasing_again_is_a_repeat_and_an_unknown_reference_is_not_found() -> None:
    record = subject()
    record.place_hold(ctx(), "CASE-1", "dispute")
    release = ctx()
    record.release_hold(release, "CASE-1")

    with pytest.raises(RepeatedFact) as repeat:
        record.release_hold(ctx(), "CASE-1")
    assert repeat.value.first_command_id == release.command_id
    with pytest.raises(NotFound):
        record.release_hold(ctx(), "CASE-2")


def test_a_released_reference_may_be_placed_again() -> None:
    record = subject()
    record.place_hold(ctx(), "CASE-1", "dispute")
    record.release_hold(ctx(), "CASE-1")
    record.place_hold(ctx(), "CASE-1", "investigation")

    assert record.holds["CASE-1"]["reason"] == "investigation"
    with pytest.raises(RuleViolation):
        check_erasable(record, T0)


# -- restriction (PIPL 47 para 2) -------------------------------------------------------------
def test_a_restriction_runs_until_the_last_retention_and_follows_a_longer_one() -> None:
    first_end = T0 + timedelta(days=1000)
    record = scheduled(first_end)
    record.restrict_while_retained(ctx(), "account_cancelled")
    record.restrict_while_retained(ctx(), "account_cancelled")  # nothing new: no event
    later_end = first_end + timedelta(days=30)
    record.schedule_retention(ctx(), "O-2", later_end, completed_at=T0)
    record.restrict_while_retained(ctx(), "account_cancelled")

    restrictions = [e for e in record.pending_events if isinstance(e, ProcessingRestricted)]
    assert [(r.basis, r.until) for r in restrictions] == [
        ("account_cancelled", first_end),
        ("account_cancelled", later_end),
    ]


def test_no_restriction_once_every_retention_has_ended_or_none_was_recorded() -> None:
    for record in (subject(), scheduled(T0)):
        record.restrict_while_retained(ctx(T0), "account_cancelled")
        assert not [e for e in record.pending_events if isinstance(e, ProcessingRestricted)]


def test_a_schedule_names_its_cause() -> None:
    record = scheduled(T0 + timedelta(days=1))
    record.schedule_retention(ctx(), "O-1", T0 + timedelta(days=2), completed_at=None, case_id="r1")

    causes = [
        (e.cause, e.case_id) for e in record.pending_events if isinstance(e, RetentionScheduled)
    ]
    assert causes == [("completion", None), ("after_sales_case", "r1")]
