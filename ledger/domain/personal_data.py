"""Reads of personal data, recorded in the log: who read which fields of whose data, when.

The API issue (item 5) asks that reads of personal data by auditors and regulators are
themselves recorded. Each such read is one ``PersonalDataRead`` event on a stream of its own
(``PersonalDataAccess``, one per read, so readers never contend): the reader's API key id and
role, the data subject, the order, and the names of the fields read. Never their values: the
record of a read must not become a copy of what was read.

The retention trail (projections/views/retention.py) shows each read as an ``accessed`` step
of its subject.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from eventsourcing.domain import Aggregate

from ledger.domain.context import Ctx
from ledger.domain.ids import stream_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.topics import topic

# Roles whose reads of personal data are recorded. A ``service`` reads a contact to deliver
# the order it is about (its operational need, DOMAIN.md §7); auditors and regulators read
# to examine, and their reads are what a data subject may ask about.
RECORDED_ROLES = frozenset({"auditor", "regulator"})

# The legal bases on which a restricted subject's data may still be read (PIPL 47 para 2:
# stored, not processed, "法律、行政法规另有规定除外"; agreement 4.1.2 and 4.1.3(2)): a law or
# administrative regulation requiring it (e.g. ECL 25, a regulator's request for e-commerce
# data), a legal process (a court's order, an arbitration), a mandatory administrative or
# judicial requirement. Cited by an auditor or regulator with the request's ``reference``.
LegalBasis = Literal["law_or_regulation", "legal_process", "administrative_order", "judicial_order"]


@topic("personal-data/Event")
class PersonalDataEvent(Aggregate.Event):
    """An event of a ``PersonalDataAccess`` stream."""

    class_version = 1
    command_id: str


@topic("personal-data/Read")
class PersonalDataRead(PersonalDataEvent, Aggregate.Created):
    """Who (``actor``) read which fields (``fields``, names only) of whose data
    (``subject_id``) on which order, at the event's ``timestamp`` (the injected clock), and,
    for a subject whose processing is restricted (PIPL 47 para 2), the ``legal_basis`` and
    the request's ``reference`` the reader cited (v2; None otherwise)."""

    class_version = 2
    subject_id: str  # whose data: the subject whose key seals the fields
    order_no: str
    fields: list[str]  # names of the fields read, never their values
    actor: dict[str, str | None]  # Actor.as_dict(): API key id and role
    legal_basis: str | None
    reference: str | None

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """v1 reads cited no basis: restricted subjects' data was not yet withheld."""
        state["legal_basis"] = None
        state["reference"] = None

    def apply(self, agg: Any) -> None:
        agg.subject_id = self.subject_id
        agg.order_no = self.order_no
        agg.fields = list(self.fields)


class PersonalDataAccess(JournaledAggregate):
    """One recorded read of personal data (a stream of one event)."""

    TOPIC = "mall-ledger/personal-data"
    Event = PersonalDataEvent
    Created = PersonalDataRead

    if TYPE_CHECKING:
        subject_id: str
        order_no: str
        fields: list[str]

    @classmethod
    def record(
        cls,
        ctx: Ctx,
        read_id: str,
        subject_id: str,
        order_no: str,
        fields: list[str],
        cited: tuple[str, str] | None = None,
    ) -> PersonalDataAccess:
        """The read ``read_id`` (unique per read) by ``ctx.actor`` at ``ctx.at``; ``cited``:
        the legal basis and reference of a read of a restricted subject's data."""
        return cls._create(
            PersonalDataRead,
            id=stream_id("personal-data-read", read_id),
            timestamp=ctx.at,
            command_id=ctx.command_id,
            subject_id=subject_id,
            order_no=order_no,
            fields=sorted(fields),
            actor=ctx.actor.as_dict(),
            legal_basis=cited[0] if cited else None,
            reference=cited[1] if cited else None,
        )
