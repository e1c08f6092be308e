"""Erasure by crypto-shredding (issue 11, item 4) through the application, on both backends
with a moved clock: refused under a legal hold, deferred (and restricted) inside a retention,
done when neither applies; the keys go only after the event is saved; the subject's orders
still replay with their amounts and states and read ``[erased]``.

Times are China time; the clock starts 2 March 2026 09:00.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.access_copy import give_access_copy
from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.domain import data_subject as ds
from ledger.domain.context import LOCAL_ACTOR
from ledger.domain.errors import NotFound
from ledger.domain.ids import data_subject_id
from ledger.domain.order import events as ev
from ledger.erasure import ErasureRetentionRequired
from ledger.sealing import ERASED
from projections.engine import Runtime
from projections.views.flags import FLAGS, REFUSALS
from tests import builders as b
from tests.checks import events_of, export_text, stream
from tests.integration.test_projections import catch_up
from tests.integration.test_retention import completed_unpaid, hold, release, subject_of
from tests.integration.test_shredding import all_stored_bytes

SUBJECT = data_subject_id("acct-1")
# acct-1's personal values as the builders send them: none may be found after its erasure.
PLAIN = dict(b.CONTACT)


def erase(command_id: str | None = None, subject_id: str = "acct-1", **over: Any) -> dict[str, Any]:
    command = b.other("request_erasure", subject_id=subject_id, **over)
    if command_id is not None:
        command["command_id"] = command_id
    return command


def retention_over(ledger: Ledger, clock: ManualClock, order_no: str = "O-1") -> None:
    """acct-1's order ``order_no`` completed, and the clock moved past its retention: nothing
    keeps the subject's data any more."""
    until = completed_unpaid(ledger, order_no)
    clock.set(until + timedelta(days=1))


def steps(ledger: Ledger, subject: str = "acct-1") -> list[str]:
    """The subject's lifecycle events' names, in order."""
    return [type(e).__name__ for e in ledger.app.events.get(data_subject_id(subject))]


def test_a_subject_with_no_hold_and_no_retention_is_erased_and_its_key_destroyed(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    retention_over(ledger_app, clock)
    assert ERASED not in ledger_app.contact("O-1").values()

    result = ledger_app.execute(erase(reference="REQ-1"))

    assert result.result["outcome"] == "erased"
    assert steps(ledger_app)[-2:] == ["ErasureRequested", "SubjectErased"]
    assert ledger_app.keystore.is_destroyed("acct-1")
    assert set(ledger_app.contact("O-1").values()) == {ERASED}
    order = ledger_app.order("O-1")  # still replays: amounts and states are kept
    assert order.total_due_fen > 0


def test_an_erasure_of_a_subject_the_ledger_never_knew_is_not_found_and_writes_nothing(
    ledger_app: Ledger,
) -> None:
    head = ledger_app.app.recorder.max_notification_id()
    with pytest.raises(NotFound) as refused:
        ledger_app.execute(erase(subject_id="acct-typo"))
    assert refused.value.code == "NOT_FOUND"
    assert ledger_app.app.recorder.max_notification_id() == head  # no request, no stream
    assert not ledger_app.keystore.knows("acct-typo")
    ledger_app.execute(b.submit("O-9", account_no="acct-typo"))  # its first order still goes


def test_an_erasure_under_a_legal_hold_is_refused_and_recorded_and_the_key_kept(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    retention_over(ledger_app, clock)
    ledger_app.execute(hold("CASE-1"))

    with pytest.raises(ds.RuleViolation) as caught:
        ledger_app.execute(erase("erase-1", reference="REQ-1"))

    assert (caught.value.code, caught.value.clause) == ("LEGAL_HOLD", "PIPL 47")
    assert caught.value.recorded
    assert steps(ledger_app)[-2:] == ["ErasureRequested", "ErasureRefused"]
    [refusal] = events_of(ledger_app, SUBJECT, ds.ErasureRefused)
    assert (refusal.code, refusal.references, refusal.reference) == (
        "LEGAL_HOLD",
        ["CASE-1"],
        "REQ-1",
    )
    assert not ledger_app.keystore.is_destroyed("acct-1")
    head = ledger_app.head_position()
    with pytest.raises(ds.RuleViolation) as again:  # a retry: the same refusal, nothing new
        ledger_app.execute(erase("erase-1", reference="REQ-1"))
    assert again.value.code == "LEGAL_HOLD"
    assert ledger_app.head_position() == head

    ledger_app.execute(release("CASE-1"))
    assert ledger_app.execute(erase()).result["outcome"] == "erased"
    assert ledger_app.keystore.is_destroyed("acct-1")


def test_an_erasure_inside_the_retention_is_deferred_with_the_date_and_restricts_instead(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    until = completed_unpaid(ledger_app, "O-1")

    with pytest.raises(ErasureRetentionRequired) as caught:
        ledger_app.execute(erase("erase-1"))

    assert (caught.value.code, caught.value.clause) == ("RETENTION_REQUIRED", "ECL 31")
    assert caught.value.retain_until == until
    assert steps(ledger_app)[-3:] == ["ErasureRequested", "ErasureDeferred", "ProcessingRestricted"]
    [deferred] = events_of(ledger_app, SUBJECT, ds.ErasureDeferred)
    assert (deferred.code, deferred.until) == ("RETENTION_REQUIRED", until)
    [restricted] = events_of(ledger_app, SUBJECT, ds.ProcessingRestricted)
    assert (restricted.basis, restricted.until) == ("erasure_deferred", until)
    assert not ledger_app.keystore.is_destroyed("acct-1")
    subject = subject_of(ledger_app)
    assert subject is not None
    assert not subject.erasure_due(until - timedelta(seconds=1))
    assert subject.erasure_due(until)

    # a second request: deferred again, without a second restriction
    with pytest.raises(ErasureRetentionRequired):
        ledger_app.execute(erase())
    assert len(events_of(ledger_app, SUBJECT, ds.ProcessingRestricted)) == 1


def test_an_erasure_repeated_after_a_crash_before_the_keys_went_destroys_them(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    """The event saved, the process gone before the destroy: a repeat of the command (same
    id) finds the erasure recorded and finishes it."""
    retention_over(ledger_app, clock)
    command = erase("erase-1")
    original = ledger_app.keystore.destroy
    ledger_app.keystore.destroy = lambda subject_id, at: False  # type: ignore[method-assign]
    try:
        ledger_app.execute(command)
    finally:
        del ledger_app.keystore.destroy
    assert ledger_app.keystore.destroy == original
    assert not ledger_app.keystore.is_destroyed("acct-1")

    again = ledger_app.execute(command)

    assert again.duplicate and again.result["outcome"] == "erased"
    assert ledger_app.keystore.is_destroyed("acct-1")


def erased_at(ledger: Ledger) -> datetime:
    [erased] = events_of(ledger, SUBJECT, ds.SubjectErased)
    return erased.timestamp  # type: ignore[no-any-return]


def test_an_erasure_while_an_order_is_being_performed_is_refused_and_recorded(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    """PIPL 13(2): the open order's contact is needed to deliver it; the request is refused
    with the orders named, recorded, and the keys kept. Once it completes, the erasure waits
    for its retention like any other."""
    retention_over(ledger_app, clock)
    ledger_app.execute(b.submit("O-2"))

    with pytest.raises(ds.RuleViolation) as caught:
        ledger_app.execute(erase("erase-1", reference="REQ-1"))

    assert (caught.value.code, caught.value.clause) == ("ORDER_IN_PROGRESS", "PIPL 13(2)")
    assert caught.value.recorded and "O-2" in caught.value.message
    assert "O-1" not in caught.value.message  # completed: not in progress
    [refusal] = events_of(ledger_app, SUBJECT, ds.ErasureRefused)
    assert (refusal.code, refusal.references, refusal.reference) == (
        "ORDER_IN_PROGRESS",
        [],
        "REQ-1",
    )
    assert not ledger_app.keystore.is_destroyed("acct-1")
    assert ledger_app.contact("O-2")["phone"] == b.CONTACT["phone"]
    with pytest.raises(ds.RuleViolation) as again:  # a retry: the same refusal
        ledger_app.execute(erase("erase-1", reference="REQ-1"))
    assert again.value.code == "ORDER_IN_PROGRESS"

    ledger_app.execute(b.order_cmd("cancel_order", "O-2"))
    ledger_app.execute(b.order_cmd("complete_transaction", "O-2"))
    with pytest.raises(ErasureRetentionRequired):
        ledger_app.execute(erase())


def test_a_legal_hold_is_named_before_an_order_in_progress(ledger_app: Ledger) -> None:
    ledger_app.execute(b.submit("O-1"))
    ledger_app.execute(hold("CASE-1"))
    with pytest.raises(ds.RuleViolation) as caught:
        ledger_app.execute(erase())
    assert caught.value.code == "LEGAL_HOLD"


def refused_and_reviewed(ledger: Ledger, clock: ManualClock, order_no: str) -> None:
    """acct-1's order refused at delivery with a reason, flagged and reviewed with a note
    (both naming the phone), closed, refunded and completed."""
    ledger.execute(b.submit(order_no))
    ledger.execute(b.pay(order_no))
    ledger.execute(b.ship(order_no))
    refusal = {"quality_reason": False, "reason": f"call {PLAIN['phone']}"}
    ledger.execute(b.order_cmd("refuse_delivery", order_no, **refusal))
    evidence = {"orders": [order_no], "signals": ["phone"]}
    flag = {"flag_id": "F-1", "criterion": 4, "evidence": evidence, "automated": False}
    ledger.execute(b.order_cmd("raise_flag", order_no, **flag))
    review = {"reviewer_id": "risk-7", "outcome": "dismissed", "note": PLAIN["phone"]}
    ledger.execute(b.order_cmd("review_flag", order_no, flag_id="F-1", **review))
    ledger.execute(b.order_cmd("close_order", order_no, ground="delivery_refused"))
    for refund_id in list(ledger.order(order_no).pending_refunds):  # the closure's refund
        ledger.execute(b.order_cmd("complete_refund", order_no, refund_id=refund_id))
    clock.set(clock.now() + timedelta(minutes=1))
    ledger.execute(b.order_cmd("complete_transaction", order_no))


def linkage_of(ledger: Ledger, order_no: str) -> dict[str, str]:
    [submitted] = [e for e in stream(ledger, order_no) if isinstance(e, ev.OrderSubmitted)]
    return dict(submitted.linkage)


def test_after_erasure_no_table_export_copy_or_log_holds_the_subjects_plaintext(
    ledger_app: Ledger,
    clock: ManualClock,
    rt: Runtime,
    backend: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 11's search: every table (events, command records, projections, key store), an
    export and an access copy made afterwards, and every log line written during the test,
    hold none of the erased subject's personal values, typed free text included."""
    caplog.set_level(logging.DEBUG)
    ledger_app.execute(b.submit("O-1"))
    ledger_app.execute(b.order_cmd("cancel_order", "O-1", reason=f"call {PLAIN['phone']}"))
    ledger_app.execute(b.order_cmd("complete_transaction", "O-1"))
    refused_and_reviewed(ledger_app, clock, "O-2")
    retain_until = ledger_app.order("O-2").retain_until
    assert retain_until is not None
    clock.set(retain_until + timedelta(days=1))
    assert ledger_app.execute(erase()).result["outcome"] == "erased"
    catch_up(rt)
    projected = all_stored_bytes(ledger_app, backend, prefix="pj_")
    for order_no in ("O-1", "O-2"):  # nothing derived from the subject: its digests neither
        for name, digest in linkage_of(ledger_app, order_no).items():
            assert digest.encode() not in projected, name
            year = int(name.split("@")[1])  # and the keys the log's copies were made under
            assert ledger_app.keystore.year_linkage_key(year, create=False) is None, name

    exported = export_text(ledger_app, rt, tmp_path / "export")
    give_access_copy(ledger_app, "acct-1", tmp_path / "copy", LOCAL_ACTOR)
    copied = b"".join(p.read_bytes() for p in (tmp_path / "copy").iterdir())
    stored = all_stored_bytes(ledger_app, backend)
    for name, value in PLAIN.items():
        assert value.encode() not in stored, name
        assert value not in exported, name
        assert value.encode() not in copied, name
        assert value not in caplog.text, name
    assert ledger_app.order("O-1").total_due_fen == 399900  # the record stays
    with rt.db.reading() as cur:  # the reason and the note are gone, the facts stay
        refusals = rt.db.select_in(cur, REFUSALS, REFUSALS.physical(""), "order_no", ["O-2"])
        flags = rt.db.select_in(cur, FLAGS, FLAGS.physical(""), "order_no", ["O-2"])
    assert [(r["reason"], r["quality_reason"]) for r in refusals] == [(ERASED, False)]
    assert [(f["review_note"], f["outcome"]) for f in flags] == [(ERASED, "dismissed")]
