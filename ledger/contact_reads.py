"""Revealing an order's contact details to a reader, recording the read where the reader's
role requires it (service layer, like ledger/api_keys.py; the rule is in
ledger/domain/personal_data.py).

The read is recorded before anything is revealed: a reader never gets plaintext whose read is
not in the log (a failed save is ``STORAGE_UNAVAILABLE`` and reveals nothing). A subject
erased by any process reads ``[erased]`` in every field: the key store is asked, not this
process's key cache.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ledger.application import Ledger
from ledger.domain.context import Actor, Ctx
from ledger.domain.errors import NotFound
from ledger.domain.personal_data import RECORDED_ROLES, PersonalDataAccess
from ledger.driver_errors import storage_errors
from ledger.keystore import DIRECT, MAIN, KeyScope
from ledger.sealing import ERASED


@dataclass(frozen=True)
class RevealedContact:
    """An order's contact in plaintext (``[erased]`` per field once the subject is erased),
    the order stream's version, and the log position the answer reflects: the read's own
    record when one was written, else the head of the log when the order was read."""

    order_no: str
    contact: dict[str, str]
    version: int
    position: int
    recorded: bool


def reveal_contact(ledger: Ledger, order_no: str, actor: Actor) -> RevealedContact:
    """The contact details of order ``order_no`` for ``actor``; raises NotFound for an order
    the log lacks, SealInvalid for a token that fails authentication, StorageUnavailable."""
    with storage_errors():
        head = ledger.head_position()
        try:
            order = ledger.order(order_no)
        except NotFound:
            raise NotFound("no such order") from None  # the number may be anything sent
        sealed: dict[str, str] = dict(order.contact)
        subject = _subject(ledger, sealed, order.account_no)
        position, recorded = head, False
        if actor.role in RECORDED_ROLES:
            position, recorded = _record(ledger, actor, subject, order_no, sorted(sealed)), True
        erased = {
            MAIN: ledger.keystore.is_destroyed(subject),
            DIRECT: ledger.keystore.is_destroyed(subject, KeyScope.DIRECT),
        }
        erased[DIRECT] = erased[DIRECT] or erased[MAIN]
        contact = {
            name: ERASED
            if erased[ledger.sealer.kind_of(token)]
            else ledger.reveal(token, name, order_no)
            for name, token in sealed.items()
        }
    return RevealedContact(order_no, contact, order.version, position, recorded)


def _subject(ledger: Ledger, sealed: dict[str, str], account_no: str) -> str:
    """Whose data the fields are: the subject their tokens name (the order's account)."""
    first = next(iter(sealed.values()), None)
    return account_no if first is None else ledger.sealer.subject_of(first)


def _record(ledger: Ledger, actor: Actor, subject: str, order_no: str, fields: list[str]) -> int:
    """Save the read as its own event; its position in the log."""
    read_id = f"personal-data-read-{secrets.token_hex(8)}"
    ctx = Ctx(read_id, ledger.moment(None), actor)
    recordings = ledger.app.save(PersonalDataAccess.record(ctx, read_id, subject, order_no, fields))
    return max(r.notification.id for r in recordings)
