"""Personal data is sealed per subject (DOMAIN.md section 7, PIPL 47): never plaintext in
the store; destroying one subject's key erases only that subject's personal fields."""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.application import Ledger
from ledger.sealing import ERASED
from tests.builders import CONTACT, order_cmd, pay, submit

OTHER_CONTACT = {
    "recipient_name": "李四",
    "phone": "13698765432",
    "address": "广东省深圳市南山区科技园南区深南大道9988号",
    "ip": "183.60.92.14",
}


def raw_event_bytes(ledger: Ledger) -> bytes:
    notifications = ledger.app.recorder.select_notifications(start=1, limit=10_000)
    return b"".join(n.state + n.topic.encode() for n in notifications)


def test_personal_fields_are_not_stored_in_plaintext(ledger_app: Ledger) -> None:
    ledger_app.execute(submit("O-PD-1"))
    ledger_app.execute(pay("O-PD-1"))
    stored = raw_event_bytes(ledger_app)
    for value in [*CONTACT.values(), "buyer@example.com"]:
        assert value.encode() not in stored
        assert value.encode("unicode_escape") not in stored
    assert ledger_app.contact("O-PD-1") == CONTACT


def test_destroying_a_subjects_key_erases_only_that_subject(ledger_app: Ledger) -> None:
    ledger_app.execute(submit("O-PD-2", account_no="acct-erased"))
    ledger_app.execute(submit("O-PD-3", account_no="acct-kept", contact=OTHER_CONTACT))
    ledger_app.execute(pay("O-PD-2"))

    assert ledger_app.keystore.destroy("acct-erased", datetime(2026, 3, 3, tzinfo=UTC))

    erased = ledger_app.order("O-PD-2")
    assert erased.status == "paid" and erased.paid_fen == {"alipay": 399900}
    assert ledger_app.contact("O-PD-2") == dict.fromkeys(CONTACT, ERASED)
    assert ledger_app.contact("O-PD-3") == OTHER_CONTACT


def test_an_erased_subjects_order_still_takes_commands(ledger_app: Ledger) -> None:
    ledger_app.execute(submit("O-PD-4", account_no="acct-gone"))
    ledger_app.execute(pay("O-PD-4"))
    ledger_app.keystore.destroy("acct-gone", datetime(2026, 3, 3, tzinfo=UTC))
    result = ledger_app.execute(order_cmd("ship_order", "O-PD-4", carrier="SF", tracking_no="T9"))
    assert result.events == ["order/Shipped"]
