"""Free text typed into a flag review, a coupon's restore rule and a promotion's description is
sealed like any personal field (issue 11, item 7), on both backends: no stored byte holds it,
it opens only for its own stream and field, a repeat is still told by its text, and it reads
``[erased]`` once the key it belongs under is destroyed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.application import Ledger
from ledger.domain.entitlement import EntitlementRestored
from ledger.domain.errors import RuleViolation
from ledger.domain.ids import entitlement_id, promotion_id
from ledger.domain.order import events as ev
from ledger.domain.promotion import PromotionDefined, PromotionRevised, promotion_subject
from ledger.sealing import ERASED, SealInvalid, is_token
from tests import builders as b
from tests.checks import events_of, stream
from tests.integration.test_shredding import all_stored_bytes

AT = datetime(2026, 3, 3, tzinfo=UTC)
NOTE = f"buyer said on {b.CONTACT['phone']} the phones are for his shop"
RULE = f"goodwill for 王小明 after complaint {b.CONTACT['phone']}"
DESCRIPTION = "winner 李雷 (13700001111) gets 10% off"


def reviewed(ledger: Ledger, note: str = NOTE) -> dict[str, object]:
    ledger.execute(b.submit("FT-1"))
    flag = {"orders": ["FT-1"], "signals": ["phone"]}
    raise_flag = b.order_cmd(
        "raise_flag", "FT-1", flag_id="f-1", criterion=2, evidence=flag, automated=False
    )
    ledger.execute(raise_flag)
    review = b.order_cmd(
        "review_flag", "FT-1", flag_id="f-1", reviewer_id="risk-7", outcome="confirmed", note=note
    )
    ledger.execute(review)
    return review


def restored(ledger: Ledger) -> None:
    ledger.execute(b.issue("C-FT"))
    ledger.execute(b.submit("FT-2", coupons=["C-FT"]))
    ledger.execute(b.order_cmd("cancel_order", "FT-2"))
    ledger.execute(b.other("restore_entitlement", code="C-FT", rule=RULE))


def promotion(ledger: Ledger, description: str = DESCRIPTION) -> None:
    start = ledger.clock.now()
    ledger.execute(
        b.other(
            "define_promotion",
            promotion_no="PR:1",
            valid_from=start.isoformat(),
            valid_until=(start + timedelta(days=7)).isoformat(),
            description=description,
        )
    )


def assert_sealed_then_erased(
    ledger: Ledger, backend: str, token: str, where: tuple[str, str], text: str
) -> None:
    """``token`` is acct-1's, opens as ``text`` for its (stream, field) ``where`` only, is in
    no stored byte in clear, and reads ``[erased]`` once acct-1's keys are destroyed."""
    stream_no, field = where
    assert is_token(token) and ledger.sealer.subject_of(token) == "acct-1"
    assert ledger.reveal(token, field, stream_no) == text
    with pytest.raises(SealInvalid):
        ledger.reveal(token, field, "FT-9")
    assert text.encode() not in all_stored_bytes(ledger, backend)
    ledger.keystore.destroy("acct-1", AT)
    assert ledger.reveal(token, field, stream_no) == ERASED


def test_a_flag_review_note_is_sealed_under_the_orders_subject_and_bound_to_the_order(
    ledger_app: Ledger, backend: str
) -> None:
    review = reviewed(ledger_app)
    head = ledger_app.head_position()  # the same review again, by its text: a repeat
    assert ledger_app.execute({**review, "command_id": b.cid("again")}).duplicate
    assert ledger_app.head_position() == head
    other = {**review, "command_id": b.cid("other"), "note": "another note"}
    with pytest.raises(RuleViolation) as caught:
        ledger_app.execute(other)
    assert caught.value.code == "FLAG_ALREADY_REVIEWED"
    [event] = [e for e in stream(ledger_app, "FT-1") if isinstance(e, ev.AbnormalOrderFlagReviewed)]
    assert_sealed_then_erased(ledger_app, backend, event.note, ("FT-1", "note"), NOTE)


def test_a_restore_rule_is_sealed_under_the_account_whose_order_used_the_coupon(
    ledger_app: Ledger, backend: str
) -> None:
    restored(ledger_app)
    [event] = events_of(ledger_app, entitlement_id("C-FT"), EntitlementRestored)
    assert event.order_no == "FT-2"
    assert_sealed_then_erased(ledger_app, backend, event.rule, ("FT-2", "rule"), RULE)


def test_a_promotion_description_is_sealed_under_its_own_key_which_shreds_it_alone(
    ledger_app: Ledger, backend: str
) -> None:
    promotion(ledger_app)
    promotion(ledger_app, "second terms")  # a revision: sealed the same way
    events = list(ledger_app.app.events.get(promotion_id("PR:1")))
    assert [type(e) for e in events] == [PromotionDefined, PromotionRevised]
    subject = promotion_subject("PR:1")
    assert all(ledger_app.sealer.subject_of(e.description) == subject for e in events)
    assert ledger_app.reveal(events[0].description, "description", "PR:1") == DESCRIPTION
    assert DESCRIPTION.encode() not in all_stored_bytes(ledger_app, backend)
    ledger_app.execute(b.submit("FT-3"))

    ledger_app.keystore.destroy(subject, AT)
    assert ledger_app.reveal(events[1].description, "description", "PR:1") == ERASED
    assert ledger_app.contact("FT-3")["phone"] == b.CONTACT["phone"]  # nothing else went


def test_a_promotion_with_an_empty_window_makes_no_key_for_its_text(ledger_app: Ledger) -> None:
    start = ledger_app.clock.now().isoformat()
    bad = b.other(
        "define_promotion",
        promotion_no="PR-2",
        valid_from=start,
        valid_until=start,
        description=DESCRIPTION,
    )
    with pytest.raises(RuleViolation):
        ledger_app.execute(bad)
    assert ledger_app.keystore.existing_key(promotion_subject("PR-2")) is None
