"""Revealing an order's contact details to a reader, recording the read where the reader's
role requires it (service layer, like ledger/api_keys.py; the rule is in
ledger/domain/personal_data.py).

The read is recorded before anything is revealed: a reader never gets plaintext whose read is
not in the log (a failed save is ``STORAGE_UNAVAILABLE`` and reveals nothing). A subject
erased by any process reads ``[erased]`` in every field: the key store is asked, not this
process's key cache.

A subject whose processing is restricted (PIPL 47 para 2: kept while the law requires, not
processed; ``DataSubject.restricts``) is not revealed (``PROCESSING_RESTRICTED``) unless an
auditor or regulator cites a legal basis and the request's reference (agreement 4.1.2 and
4.1.3(2): a law, a legal process, a mandatory administrative or judicial requirement); the
read is then recorded with both.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from eventsourcing.application import AggregateNotFoundError

from ledger.application import Ledger
from ledger.domain import codes
from ledger.domain.china_time import china_text
from ledger.domain.context import Actor, Ctx
from ledger.domain.data_subject import DataSubject
from ledger.domain.errors import NotFound, RuleViolation
from ledger.domain.ids import data_subject_id
from ledger.domain.personal_data import RECORDED_ROLES, PersonalDataAccess
from ledger.driver_errors import storage_errors
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


def reveal_contact(
    ledger: Ledger, order_no: str, actor: Actor, cited: tuple[str, str] | None = None
) -> RevealedContact:
    """The contact details of order ``order_no`` for ``actor``; ``cited``: the legal basis
    (``LegalBasis``) and reference an auditor or regulator gives to read a restricted
    subject. Raises NotFound for an order the log lacks, ``PROCESSING_RESTRICTED`` for a
    restricted subject read without a basis (or by a role that cannot cite one),
    SealInvalid for a token that fails authentication, StorageUnavailable."""
    with storage_errors():
        head = ledger.head_position()
        try:
            order = ledger.order(order_no)
        except NotFound:
            raise NotFound("no such order") from None  # the number may be anything sent
        sealed: dict[str, str] = dict(order.contact)
        subject = _subject(ledger, sealed, order.account_no)
        check_may_process(ledger, subject, order_no, actor, cited)
        position, recorded = head, False
        if actor.role in RECORDED_ROLES:
            fields = sorted(sealed)
            position, recorded = _record(ledger, actor, subject, order_no, fields, cited), True
        # Asked of storage, not the cache: another process's destroy is honoured at once.
        kinds = {ledger.sealer.kind_of(token) for token in sealed.values()}
        erased = {kind: ledger.keystore.kind_destroyed(subject, kind) for kind in kinds}
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


def check_may_process(
    ledger: Ledger, subject_id: str, order_no: str, actor: Actor, cited: tuple[str, str] | None
) -> None:
    """Refuse ``PROCESSING_RESTRICTED`` (PIPL 47 para 2) if ``order_no``'s personal data is
    restricted now and the reader cites no legal basis, or is not a role that may cite one
    (an auditor or a regulator). The message names the order, never the subject."""
    try:
        subject: DataSubject = ledger.app.repository.get(data_subject_id(subject_id))
    except AggregateNotFoundError:
        return
    now = ledger.clock.now()
    if not subject.restricts(order_no, now):
        return
    if cited is not None and actor.role in RECORDED_ROLES:
        return
    assert subject.restriction is not None
    raise RuleViolation(
        codes.PROCESSING_RESTRICTED,
        f"order {order_no}'s personal data is kept but not processed until "
        f"{china_text(subject.restriction['until'])} China time "
        f"({subject.restriction['basis']}): an auditor or regulator may read it citing "
        "legal_basis and reference",
    )


def _record(
    ledger: Ledger,
    actor: Actor,
    subject: str,
    order_no: str,
    fields: list[str],
    cited: tuple[str, str] | None,
) -> int:
    """Save the read as its own event, with the basis cited if any; its position."""
    read_id = f"personal-data-read-{secrets.token_hex(8)}"
    ctx = Ctx(read_id, ledger.moment(None), actor)
    read = PersonalDataAccess.record(ctx, read_id, subject, order_no, fields, cited)
    recordings = ledger.app.save(read)
    return max(r.notification.id for r in recordings)
