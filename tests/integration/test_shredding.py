"""What crypto-shredding reaches (issue 11, items 5 to 7) on both backends: sealed values bound
to their order and field, two key kinds per subject, wrapped keys, command records whose
digests an erasure makes unconfirmable, and the key store's residues."""

from __future__ import annotations

import hmac
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

import psycopg
import pytest

from ledger import payload_digest as digests
from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.commands import parse_command
from ledger.domain.errors import CommandIdReused, InvalidCommand, LedgerError
from ledger.key_admin import expire_linkage
from ledger.keystore import (
    KeyScope,
)
from ledger.sealing import ERASED, SealInvalid
from tests.builders import CONTACT, cid, order_cmd, pay, submit

AT = datetime(2026, 3, 3, tzinfo=UTC)
PHONE = CONTACT["phone"]  # 13912345678
# A small range of mainland mobile numbers around the true one: the brute force's candidates.
CANDIDATES = [f"139123456{n:02d}" for n in range(100)]


def all_stored_bytes(ledger: Ledger, url: str, prefix: str = "") -> bytes:
    """Every byte the database holds in its tables (events, command records, projections,
    keys), as text, past every cache; only tables whose name starts with ``prefix``."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path)) as conn:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            rows = [
                row
                for t in tables
                if t.startswith(prefix)
                for row in conn.execute(f'SELECT * FROM "{t}"')
            ]
    else:
        with psycopg.connect(url) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                ).fetchall()
            ]
            rows = [
                row
                for t in tables
                if t.startswith(prefix)
                for row in conn.execute(f'SELECT * FROM "{t}"').fetchall()
            ]
    return b"\n".join(_as_bytes(value) for row in rows for value in row)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, memoryview)):
        return bytes(value)
    return str(value).encode()


def live_keys(ledger: Ledger) -> list[bytes]:
    """Every key the ledger still holds: each live row of the key store, unwrapped with the
    master key file (what an attacker holding both would have)."""
    store = ledger.keystore
    rows = store._rows_not_wrapped_by("no such master key", 1_000_000)
    return [store.wrapper.unwrap(m, w, f"{slot[0]}|{slot[1]}") for slot, (m, w) in rows]


def test_a_token_moved_to_another_order_or_field_of_the_subject_fails(ledger_app: Ledger) -> None:
    ledger_app.execute(submit("SH-1"))
    ledger_app.execute(submit("SH-2"))
    phone = ledger_app.order("SH-1").contact["phone"]
    assert phone.startswith("s2:d:acct-1:")
    assert ledger_app.reveal(phone, "phone", "SH-1") == PHONE
    with pytest.raises(SealInvalid):
        ledger_app.reveal(phone, "phone", "SH-2")
    with pytest.raises(SealInvalid):
        ledger_app.reveal(phone, "address", "SH-1")


def test_direct_identifiers_go_alone_and_erasure_takes_the_rest(ledger_app: Ledger) -> None:
    ledger_app.execute(submit("SH-3"))
    ledger_app.execute(pay("SH-3"))
    assert ledger_app.keystore.destroy("acct-1", AT, KeyScope.DIRECT)
    contact = ledger_app.contact("SH-3")
    assert contact == {**dict.fromkeys(CONTACT, ERASED), "ip": CONTACT["ip"]}
    (payment,) = ledger_app.order("SH-3").payments.values()
    payer = payment["sealed"]
    assert ledger_app.reveal(payer, "payer_account", "SH-3") == "buyer@example.com"
    assert ledger_app.keystore.destroy("acct-1", AT)  # KeyScope.ALL, the default
    assert ledger_app.contact("SH-3") == dict.fromkeys(CONTACT, ERASED)
    assert ledger_app.reveal(payer, "payer_account", "SH-3") == ERASED


def test_keys_are_stored_wrapped_never_raw(ledger_app: Ledger, backend: str) -> None:
    ledger_app.execute(submit("SH-4"))
    stored = all_stored_bytes(ledger_app, backend)
    keys = live_keys(ledger_app)
    assert keys
    assert not [key for key in keys if key in stored]


def test_a_retry_is_told_from_a_reuse_before_and_after_erasure(ledger_app: Ledger) -> None:
    first = submit("SH-5")
    ledger_app.execute(first)
    assert ledger_app.execute(first).duplicate
    changed = {**first, "contact": {**CONTACT, "phone": "13912345600"}}
    with pytest.raises(CommandIdReused):
        ledger_app.execute(changed)
    ledger_app.keystore.destroy("acct-1", AT)
    assert ledger_app.execute(first).duplicate  # the non-personal part still matches
    with pytest.raises(CommandIdReused):
        ledger_app.execute({**first, "seller_id": "another-seller"})


def erased_victim(ledger: Ledger, url: str) -> tuple[Any, bytes, list[bytes]]:
    """A subject with an order and a free-text reason naming their phone, erased; another
    subject left. The victim's parsed submission, every stored byte, every live key."""
    command = submit("SH-6", account_no="acct-victim")
    ledger.execute(command)
    other = {**CONTACT, "phone": "13800000000"}
    ledger.execute(submit("SH-7", account_no="acct-other", contact=other))
    ledger.execute(order_cmd("cancel_order", "SH-6", reason=f"call me on {PHONE}"))
    assert ledger.keystore.destroy("acct-victim", AT)
    return parse_command(command), all_stored_bytes(ledger, url), live_keys(ledger)


def test_after_erasure_no_digest_or_text_confirms_the_phone(
    ledger_app: Ledger, backend: str
) -> None:
    """The attacker holds every key the ledger still holds (the master key file and the key
    store) and every stored byte; for each candidate phone they compute the command record's
    digests under every one of those keys: none appears in storage, nor the phone in clear."""
    parsed, stored, keys = erased_victim(ledger_app, backend)
    assert PHONE.encode() not in stored
    for phone in CANDIDATES:
        contact = parsed.contact.model_copy(update={"phone": phone})
        guessed = parsed.model_copy(update={"contact": contact})
        for key in keys:
            candidates = [
                digests.personal_mac(guessed, digests.subject_digest_key(key)),
                digests.personal_mac(guessed, digests.application_digest_key(key)),
                digests.personal_mac(guessed, key),
            ]
            assert not [c for c in candidates if c.encode() in stored], phone


def test_after_erasure_and_linkage_expiry_no_linkage_hash_confirms_the_phone(
    ledger_app: Ledger, backend: str
) -> None:
    """The bound README states: an erased subject's linkage digests stay testable only while
    the year keys they were made under live (until 1 January two years on); once
    ``expire_linkage`` has run, every key the ledger still holds fails every candidate."""
    erased_victim(ledger_app, backend)
    year = ledger_app.clock.now().year
    within = live_keys(ledger_app)
    stored = all_stored_bytes(ledger_app, backend)
    guesses = [phone_digest(key, PHONE) for key in within]
    assert [g for g in guesses if g in stored], "within the window the digests still link"
    assert expire_linkage(ledger_app.keystore, datetime(year + 2, 1, 1, tzinfo=UTC)) == [
        year - 1,
        year,
    ]
    stored = all_stored_bytes(ledger_app, backend)
    for key in live_keys(ledger_app):
        assert not [p for p in CANDIDATES if phone_digest(key, p) in stored]


def phone_digest(key: bytes, phone: str) -> bytes:
    return hmac.new(key, f"phone|{phone}".encode(), sha256).hexdigest().encode()


LIMITED_SKU = "PHONE-14"


def limited(order_no: str, account_no: str, phone: str) -> dict[str, Any]:
    """An order of one limited phone whose only signal in common with others is ``phone``."""
    return submit(
        order_no,
        account_no=account_no,
        contact={
            **CONTACT,
            "phone": phone,
            "address": f"{order_no} 路 1 号",
            "recipient_name": order_no,
            "ip": f"10.0.{len(order_no)}.{sum(map(ord, order_no)) % 250}",
        },
    )


def test_other_subjects_still_link_after_an_erasure(ledger_app: Ledger) -> None:
    rule = {
        "sku": LIMITED_SKU,
        "limit_qty": 1,
        "period_days": 30,
        "valid_from": ledger_app.clock.now().isoformat(),
    }
    ledger_app.execute({"type": "define_purchase_limit", "command_id": cid("rule"), **rule})
    ledger_app.execute(limited("LK-1", "acct-gone", "13700000000"))
    ledger_app.keystore.destroy("acct-gone", AT)
    ledger_app.execute(limited("LK-2", "acct-a", "13600000000"))
    with pytest.raises(LedgerError) as caught:
        ledger_app.execute(limited("LK-3", "acct-b", "136 0000 0000"))
    assert caught.value.code == "PURCHASE_LIMIT_EXCEEDED"


def test_orders_link_across_a_new_year(ledger_app: Ledger, clock: ManualClock) -> None:
    clock.set(datetime(2026, 12, 20, tzinfo=UTC))
    rule = {
        "sku": LIMITED_SKU,
        "limit_qty": 1,
        "period_days": 30,
        "valid_from": clock.now().isoformat(),
    }
    ledger_app.execute({"type": "define_purchase_limit", "command_id": cid("rule"), **rule})
    clock.set(datetime(2026, 12, 31, 23, 0, tzinfo=UTC))
    ledger_app.execute(limited("NY-1", "acct-a", "13600000000"))
    clock.set(datetime(2027, 1, 2, tzinfo=UTC))
    with pytest.raises(LedgerError) as caught:
        ledger_app.execute(limited("NY-2", "acct-b", "13600000000"))
    assert caught.value.code == "PURCHASE_LIMIT_EXCEEDED"


def test_a_limit_period_over_a_year_is_refused_naming_the_field(ledger_app: Ledger) -> None:
    rule = {"sku": LIMITED_SKU, "limit_qty": 1, "period_days": 366, "valid_from": AT.isoformat()}
    with pytest.raises(InvalidCommand) as caught:
        ledger_app.execute({"type": "define_purchase_limit", "command_id": cid("rule"), **rule})
    assert caught.value.message.startswith("define_purchase_limit.period_days: ")
    assert "365" in caught.value.message
