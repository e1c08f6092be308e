"""The retention run (issue 11, items 3 and 10) through the application, on both backends with
a clock moved years ahead: deferred erasures completed when the retention ends, holds blocking
erasure and de-identification until released, de-identification only when no open order or
after-sales case needs the direct identifiers, every step once however often it runs.

Times are China time; the clock starts 2 March 2026 09:00.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.domain import data_subject as ds
from ledger.domain.context import LOCAL_ACTOR
from ledger.domain.ids import data_subject_id
from ledger.erasure import ErasureRetentionRequired
from ledger.retention_run import RetentionSummary, run_retention
from ledger.sealing import ERASED
from projections.engine import Runtime
from projections.queries import ReadModels
from replay.seal import seal
from replay.signed_note import Signer
from replay.verify import verify
from tests import builders as b
from tests.checks import events_of
from tests.fix_app import opened_ledger
from tests.integration.test_erasure import erase, steps
from tests.integration.test_merkle_log import ORIGIN
from tests.integration.test_projections import assert_same_as_rebuild, catch_up
from tests.integration.test_retention import ADMIN, completed_unpaid, hold, release, trail
from tests.integration.test_returns import ask_return, delivered, receive

SUBJECT = data_subject_id("acct-1")
__all__ = ["trail"]  # the read models fixture, shared
YEARS_3 = timedelta(days=3 * 366)


def done(summary: RetentionSummary) -> dict[str, int]:
    """The kinds of step the run did, without the zeros."""
    return {kind: count for kind, count in summary.as_dict()["steps"].items() if count}


def count(ledger: Ledger, cls: type, subject: str = "acct-1") -> int:
    return len(events_of(ledger, data_subject_id(subject), cls))


def deferred(ledger: Ledger) -> Any:
    with pytest.raises(ErasureRetentionRequired) as caught:
        ledger.execute(erase())
    return caught.value.retain_until


def test_a_deferred_erasure_is_done_by_the_run_once_the_retention_has_ended(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    until = completed_unpaid(ledger_app, "O-1")
    assert deferred(ledger_app) == until
    clock.set(until - timedelta(seconds=1))
    # not yet erased; its purpose has ended, though: de-identified (already restricted)
    assert done(run_retention(ledger_app)) == {"deidentified": 1}

    clock.set(until + timedelta(days=1))
    summary = run_retention(ledger_app)

    assert done(summary) == {"erased": 1}
    assert steps(ledger_app)[-1] == "SubjectErased"
    [erased] = events_of(ledger_app, SUBJECT, ds.SubjectErased)
    assert erased.order_nos == ["O-1"]
    assert ledger_app.keystore.is_destroyed("acct-1")
    assert set(ledger_app.contact("O-1").values()) == {"[erased]"}
    assert ledger_app.order("O-1").total_due_fen == 399900  # the record stays
    assert done(run_retention(ledger_app)) == {}  # twice = once
    assert count(ledger_app, ds.SubjectErased) == 1


def test_a_hold_blocks_the_erasure_and_the_de_identification_until_released(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    deferred_until = (completed_unpaid(ledger_app, "O-1"), deferred(ledger_app))[1]
    ledger_app.execute(hold("CASE-1"))
    clock.set(deferred_until + YEARS_3)

    assert done(run_retention(ledger_app)) == {"held": 1}
    assert done(run_retention(ledger_app, dry_run=True)) == {"held": 1}
    assert count(ledger_app, ds.SubjectErased) == 0
    assert count(ledger_app, ds.DirectIdentifiersRemoved) == 0
    assert not ledger_app.keystore.is_destroyed("acct-1")

    ledger_app.execute(release("CASE-1"))
    assert done(run_retention(ledger_app)) == {"erased": 1}
    assert ledger_app.keystore.is_destroyed("acct-1")


def test_a_hold_blocks_de_identification_until_released(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    completed_unpaid(ledger_app, "O-1")
    ledger_app.execute(hold("CASE-1", reason="investigation"))

    assert done(run_retention(ledger_app)) == {}
    ledger_app.execute(release("CASE-1"))
    summary = run_retention(ledger_app)

    assert done(summary) == {"deidentified": 1, "restricted": 1}
    [removed] = events_of(ledger_app, SUBJECT, ds.DirectIdentifiersRemoved)
    assert (removed.order_nos, removed.subject_id) == (["O-1"], "acct-1")
    [restricted] = events_of(ledger_app, SUBJECT, ds.ProcessingRestricted)
    assert restricted.basis == "purpose_ended"
    assert done(run_retention(ledger_app)) == {}


def test_de_identification_waits_for_every_open_order_and_after_sales_case(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    completed_unpaid(ledger_app, "O-1")
    ledger_app.execute(b.submit("O-2"))  # still open: its contact is needed

    assert done(run_retention(ledger_app)) == {}

    ledger_app.execute(b.order_cmd("cancel_order", "O-2"))
    ledger_app.execute(b.order_cmd("complete_transaction", "O-2"))
    assert done(run_retention(ledger_app)) == {"deidentified": 1, "restricted": 1}
    [removed] = events_of(ledger_app, SUBJECT, ds.DirectIdentifiersRemoved)
    assert removed.order_nos == ["O-1", "O-2"]


def test_an_after_sales_case_after_completion_keeps_the_direct_identifiers(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    delivered(ledger_app, clock, "O-1")
    clock.advance(timedelta(days=8))
    ledger_app.execute(b.order_cmd("complete_transaction", "O-1"))
    clock.advance(timedelta(days=30))
    ledger_app.execute(ask_return("O-1", kind="quality"))  # reopens the transaction

    assert done(run_retention(ledger_app)) == {}
    ledger_app.execute(receive("O-1"))
    assert done(run_retention(ledger_app)) == {}
    assert count(ledger_app, ds.DirectIdentifiersRemoved) == 0


def test_an_erasure_whose_keys_a_crash_left_is_finished_by_the_run(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    until = completed_unpaid(ledger_app, "O-1")
    clock.set(until + timedelta(days=1))
    run_retention(ledger_app)  # de-identified: the erasure's crash is what the next run finds
    ledger_app.keystore.destroy = lambda subject_id, at: False  # type: ignore[method-assign]
    try:
        ledger_app.execute(erase())
    finally:
        del ledger_app.keystore.destroy
    assert not ledger_app.keystore.is_destroyed("acct-1")
    assert done(run_retention(ledger_app, dry_run=True)) == {"keys": 1}
    assert not ledger_app.keystore.is_destroyed("acct-1")

    assert done(run_retention(ledger_app)) == {"keys": 1}
    assert ledger_app.keystore.is_destroyed("acct-1")
    assert done(run_retention(ledger_app)) == {}


def test_a_retention_that_grew_defers_the_erasure_again_to_its_new_end(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    first = completed_unpaid(ledger_app, "O-1")
    deferred(ledger_app)
    clock.advance(timedelta(days=400))
    later = completed_unpaid(ledger_app, "O-2")
    clock.set(first + timedelta(days=1))

    assert done(run_retention(ledger_app)) == {"deferred": 1}
    [_, again] = events_of(ledger_app, SUBJECT, ds.ErasureDeferred)
    assert again.until == later
    assert done(run_retention(ledger_app)) == {"deidentified": 1}  # its purpose ended
    assert done(run_retention(ledger_app)) == {}
    clock.set(later)
    assert done(run_retention(ledger_app)) == {"erased": 1}


# -- what the read side shows (item 11) --------------------------------------------------------
def test_after_erasure_the_views_read_erased_and_the_trail_shows_every_step(
    ledger_app: Ledger, clock: ManualClock, rt: Runtime, trail: ReadModels
) -> None:
    until = completed_unpaid(ledger_app, "O-1")
    ledger_app.execute(hold("CASE-1"), actor=ADMIN)
    with pytest.raises(ds.RuleViolation):
        ledger_app.execute(erase(reference="REQ-1"), actor=ADMIN)  # refused
    ledger_app.execute(release("CASE-1"), actor=ADMIN)
    deferred(ledger_app)  # deferred, restricted
    clock.set(until + YEARS_3)
    run_retention(ledger_app)  # erased
    position = catch_up(rt)

    steps = trail.retention_steps("acct-1", after=position)

    assert [(s["step"], s["basis"], s["reference"]) for s in steps] == [
        ("scheduled", "ECL 31", None),
        ("hold_placed", "dispute", "CASE-1"),
        ("erasure_requested", "PIPL 47", "REQ-1"),
        ("erasure_refused", "LEGAL_HOLD", "REQ-1"),
        ("hold_released", "dispute", "CASE-1"),
        ("erasure_requested", "PIPL 47", None),
        ("erasure_deferred", "RETENTION_REQUIRED", None),
        ("restricted", "erasure_deferred", None),
        ("erased", "PIPL 47", None),
    ]
    assert steps[3]["detail"]["holds"] == ["CASE-1"] and steps[3]["actor"] == ADMIN.as_dict()
    assert steps[-1]["detail"] == {"orders": ["O-1"]} and steps[-1]["at"] == clock.now()
    subject = trail.subject_retention("acct-1")
    assert subject is not None
    assert (subject["erasure"], subject["erased_at"]) == ("erased", clock.now())
    order_retention = trail.retention("O-1")
    assert order_retention is not None and order_retention["erased_at"] == clock.now()
    order = trail.order("O-1")
    assert order is not None
    assert set(order["contact"].values()) == {ERASED}
    assert (order["status"], order["total_due_fen"]) == ("closed", 399900)
    assert_same_as_rebuild(rt, position)


def test_de_identification_shows_per_order_and_blanks_the_contact_in_the_view(
    ledger_app: Ledger, clock: ManualClock, rt: Runtime, trail: ReadModels
) -> None:
    completed_unpaid(ledger_app, "O-1")
    run_retention(ledger_app)
    position = catch_up(rt)

    assert [s["step"] for s in trail.retention_steps("acct-1", after=position)][-2:] == [
        "deidentified",
        "restricted",
    ]
    order_retention = trail.retention("O-1")
    assert order_retention is not None and order_retention["deidentified_at"] == clock.now()
    order = trail.order("O-1")
    assert order is not None and set(order["contact"].values()) == {ERASED}
    assert_same_as_rebuild(rt, position)


def test_a_due_erasure_waits_while_an_order_of_the_subject_is_still_open(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    until = completed_unpaid(ledger_app, "O-1")
    deferred(ledger_app)
    clock.set(until + timedelta(days=1))
    ledger_app.execute(b.submit("O-2"))  # a new order, being performed

    assert done(run_retention(ledger_app)) == {"waiting": 1}
    assert not ledger_app.keystore.is_destroyed("acct-1")
    ledger_app.execute(b.order_cmd("cancel_order", "O-2"))
    ledger_app.execute(b.order_cmd("complete_transaction", "O-2"))
    assert done(run_retention(ledger_app)) == {"deferred": 1}  # to O-2's retention end


def test_the_sealed_history_still_verifies_after_erasure_and_de_identification(
    ledger_app: Ledger, clock: ManualClock, rt: Runtime, tmp_path: Path
) -> None:
    """Erasure destroys keys and appends events; it never touches a stored row."""
    signer = Signer.generate(ORIGIN)
    until = completed_unpaid(ledger_app, "O-1")
    deferred(ledger_app)
    completed_unpaid(ledger_app, "O-2", account_no="acct-2")
    first = seal(ledger_app, rt, signer, tmp_path / "checkpoints", LOCAL_ACTOR)
    clock.set(until + timedelta(days=1))
    assert done(run_retention(ledger_app)) == {"erased": 1, "deidentified": 1}
    seal(ledger_app, rt, signer, tmp_path / "checkpoints", LOCAL_ACTOR)

    report = verify(rt, [signer.verifier()], ORIGIN, [])

    assert report.intact and report.checkpoints[0] == first.size


def test_a_due_erasure_waits_without_a_new_event_while_an_after_sales_case_is_open(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    delivered(ledger_app, clock, "O-1")
    clock.advance(timedelta(days=8))
    ledger_app.execute(b.order_cmd("complete_transaction", "O-1"))
    until = deferred(ledger_app)
    clock.set(until - timedelta(days=1))
    ledger_app.execute(ask_return("O-1", kind="quality"))  # reopened: the case is open
    clock.set(until + timedelta(days=1))
    head = ledger_app.head_position()

    assert done(run_retention(ledger_app)) == {"waiting": 1}
    assert done(run_retention(ledger_app)) == {"waiting": 1}
    assert ledger_app.head_position() == head  # twice = once: nothing written


def test_two_runs_at_once_count_between_them_each_step_once(
    backend: str, ledger_app: Ledger, clock: ManualClock
) -> None:
    subjects = [f"acct-{n}" for n in range(24)]
    for n, account in enumerate(subjects):
        completed_unpaid(ledger_app, f"O-{n}", account_no=account)

    def two_at_once() -> list[dict[str, int]]:
        with ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(run_in_own_ledger, backend, clock) for _ in range(2)]
            return [done(run.result()) for run in runs]

    first = two_at_once()  # each subject de-identified by one of them; a loser counts a clash
    removed = sum(count(ledger_app, ds.DirectIdentifiersRemoved, a) for a in subjects)
    assert removed == len(subjects)
    assert sum(run.get("deidentified", 0) for run in first) == removed
    clock.advance(timedelta(minutes=2))  # past the retired generations' grace
    second = two_at_once()
    assert sum(run.get("direct_keys", 0) for run in second) == len(subjects)
    assert all(ledger_app.keystore.kind_destroyed(a, "d") for a in subjects)  # the retired


def run_in_own_ledger(backend: str, clock: ManualClock) -> RetentionSummary:
    """A retention run as another process makes it: its own ledger and connections."""
    with opened_ledger(backend, clock) as ledger:
        return run_retention(ledger)
