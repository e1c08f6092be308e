"""De-identification destroys a key (issue 11, item 3; PIPL 47(1)) on both backends with a moved
clock: the retention run retires the subject's direct-identifier key generation, destroys it
once no process can still seal under it, and from then on the old orders' names, phones and
addresses read as removed everywhere (the order, the views, the contact route, a replay as of
a past position, an access copy, a regulator's export) while their amounts and states stay,
the subject's next order gets a new generation and reveals, and no stored value confirms a
guess of the old phone under any key the ledger still holds (after the linkage keys' expiry,
the bound README states).

The clock starts 2 March 2026 09:00 China time (tests/fix_app.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger import payload_digest as digests
from ledger.access_copy import give_access_copy
from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.commands import parse_command
from ledger.domain import data_subject as ds
from ledger.domain.context import LOCAL_ACTOR
from ledger.domain.ids import data_subject_id
from ledger.key_admin import expire_linkage
from ledger.retention_run import run_retention
from ledger.sealing import ERASED
from projections.engine import Runtime
from projections.queries import ReadModels
from replay.as_of import replay_as_of
from tests import builders as b
from tests.checks import events_of, export_text
from tests.fix_api import Api
from tests.integration.test_projections import catch_up
from tests.integration.test_retention import completed_unpaid, trail
from tests.integration.test_retention_run import done
from tests.integration.test_shredding import all_stored_bytes, live_keys, phone_digest

__all__ = ["trail"]  # the read models fixture, shared
PHONE = b.CONTACT["phone"]  # 13912345678, O-1's
NEW_PHONE = "13700001111"  # O-2's, sealed under the next generation
DIRECT = ("recipient_name", "phone", "address")
# Every mainland mobile number sharing O-1's first nine digits: the brute force's candidates.
CANDIDATES = [f"139123456{n:02d}" for n in range(100)]
GRACE = ds.DIRECT_KEY_GRACE + timedelta(seconds=1)


def deidentified(ledger: Ledger, clock: ManualClock) -> int:
    """acct-1's O-1 completed and de-identified, its key generation destroyed; then O-2 of the
    same subject submitted with another phone. The log position before O-2."""
    completed_unpaid(ledger, "O-1")
    assert done(run_retention(ledger)) == {"deidentified": 1, "restricted": 1}
    assert ledger.contact("O-1")["phone"] == PHONE, "retired, not destroyed, within the grace"
    clock.advance(GRACE)
    assert done(run_retention(ledger)) == {"direct_keys": 1}
    assert done(run_retention(ledger)) == {}  # twice = once
    position = ledger.head_position()
    ledger.execute(b.submit("O-2", contact={**b.CONTACT, "phone": NEW_PHONE}))
    return position


def test_the_old_orders_direct_identifiers_are_removed_and_the_new_order_reveals(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    deidentified(ledger_app, clock)

    old = ledger_app.contact("O-1")
    assert {name: old[name] for name in DIRECT} == dict.fromkeys(DIRECT, ERASED)
    assert old["ip"] == b.CONTACT["ip"]  # the main key stays: not a direct identifier
    order = ledger_app.order("O-1")
    assert (order.status, order.total_due_fen) == ("closed", 399900)  # the record stays usable
    assert ledger_app.contact("O-2") == {**b.CONTACT, "phone": NEW_PHONE}
    assert ledger_app.order("O-2").contact["phone"].startswith("s2:d2:acct-1:")
    [removed] = events_of(ledger_app, data_subject_id("acct-1"), ds.DirectIdentifiersRemoved)
    assert removed.retired_keys == ["d"]


def test_a_new_order_within_the_grace_uses_the_next_generation_and_survives_the_destroy(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    completed_unpaid(ledger_app, "O-1")
    run_retention(ledger_app)
    ledger_app.execute(b.submit("O-2", contact={**b.CONTACT, "phone": NEW_PHONE}))
    clock.advance(GRACE)

    assert done(run_retention(ledger_app)) == {}  # O-2 is open: nothing is destroyed
    ledger_app.execute(b.order_cmd("cancel_order", "O-2"))
    ledger_app.execute(b.order_cmd("complete_transaction", "O-2"))
    assert done(run_retention(ledger_app)) == {"deidentified": 1, "direct_keys": 1}
    assert ledger_app.contact("O-1")["phone"] == ERASED
    assert ledger_app.contact("O-2")["phone"] == NEW_PHONE  # d2 retired, within its grace
    clock.advance(GRACE)
    assert done(run_retention(ledger_app)) == {"direct_keys": 1}
    assert ledger_app.contact("O-2")["phone"] == ERASED


def test_views_replays_access_copies_and_exports_read_the_old_fields_as_removed(
    ledger_app: Ledger, clock: ManualClock, rt: Runtime, trail: ReadModels, tmp_path: Path
) -> None:
    before_o2 = deidentified(ledger_app, clock)
    catch_up(rt)

    view = trail.order("O-1")
    assert view is not None and set(view["contact"].values()) == {ERASED}
    past = replay_as_of(ledger_app, "order", "O-1", position=before_o2)
    sealed = past.state["contact"]
    revealed = {name: ledger_app.reveal(sealed[name], name, "O-1") for name in DIRECT}
    assert revealed == dict.fromkeys(DIRECT, ERASED)

    give_access_copy(ledger_app, "acct-1", tmp_path / "copy", LOCAL_ACTOR)
    copied = json.loads((tmp_path / "copy" / "orders.json").read_text())["orders"]
    contacts = {o["order_no"]: o["contact"] for o in copied}
    assert contacts["O-1"]["phone"] == ERASED and contacts["O-2"]["phone"] == NEW_PHONE

    exported = export_text(ledger_app, rt, tmp_path / "export")
    assert PHONE not in exported and NEW_PHONE in exported
    everything = b"".join(p.read_bytes() for p in (tmp_path / "copy").iterdir())
    assert PHONE.encode() not in everything


def test_the_contact_route_reads_the_old_fields_as_removed(
    ledger_app: Ledger, clock: ManualClock, api: Api
) -> None:
    deidentified(ledger_app, clock)
    cited = {"legal_basis": "judicial_order", "reference": "COURT-1"}  # O-1 is restricted

    old = api.get("/v1/orders/O-1/contact", role="auditor", **cited)
    new = api.get("/v1/orders/O-2/contact", role="auditor")

    assert old.status_code == 200, old.text
    assert old.json()["item"]["contact"]["phone"] == ERASED
    assert new.json()["item"]["contact"]["phone"] == NEW_PHONE


def test_no_stored_value_confirms_the_old_phone_under_any_key_still_held(
    ledger_app: Ledger, clock: ManualClock, backend: str
) -> None:
    """The attacker holds the master key file and the key store (every key still held) and
    every stored byte; for each candidate they compute the command record's digests and the
    linkage digests. Only the year-keyed linkage digests confirm O-1's phone until their keys
    expire (the bound README states); afterwards nothing does."""
    deidentified(ledger_app, clock)
    parsed = parse_command(b.submit("O-1"))  # O-1's submission: the same contact
    stored = all_stored_bytes(ledger_app, backend)
    assert PHONE.encode() not in stored
    assert not _confirmed_by_records(parsed, stored, live_keys(ledger_app))
    within = [phone_digest(key, PHONE) for key in live_keys(ledger_app)]
    assert [g for g in within if g in stored], "within the window the linkage still links"

    year = clock.now().year
    expire_linkage(ledger_app.keystore, datetime(year + 2, 1, 1, tzinfo=UTC))
    stored = all_stored_bytes(ledger_app, backend)
    keys = live_keys(ledger_app)
    assert keys, "the main key and the new generation are still held"
    assert not _confirmed_by_records(parsed, stored, keys)
    assert not [p for p in CANDIDATES for key in keys if phone_digest(key, p) in stored]


def _confirmed_by_records(parsed: Any, stored: bytes, keys: list[bytes]) -> list[str]:
    """The candidates whose command-record digests, under any of ``keys`` (raw or derived),
    appear in ``stored``."""
    found = []
    for phone in CANDIDATES:
        contact = parsed.contact.model_copy(update={"phone": phone})
        guessed = parsed.model_copy(update={"contact": contact})
        direct = digests.personal_fields(guessed, digests.DIRECT_KIND)
        for key in keys:
            for candidate_key in (key, digests.subject_digest_key(key)):
                macs = [
                    digests.personal_mac(guessed, candidate_key),
                    digests.personal_mac(guessed, candidate_key, direct),
                ]
                if [m for m in macs if m.encode() in stored]:
                    found.append(phone)
    return found
