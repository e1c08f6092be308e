"""Idempotency: one stream per command_id, written in the same transaction as the
command's events. A retry finds it and gets the original outcome; the same id with a
different payload is refused (KurrentDB deduplicates by event id the same way).

A command refused by a rule (or naming something that does not exist) during an import of
history is an outcome too: its record (``command/Refused``) keeps the code and clause, and a
retry is refused the same way, however the ledger has changed since. Re-running an import
therefore gives the ledger that running it once gave (issue 8, case 9). A single command
(``Ledger.execute``) is not recorded when refused: an interactive client may fix what it
was refused for and retry with the same id. The refusal's message is not kept: the log is
append-only and a message is text that must never hold personal data, so a retry's message
is made from the command id, code and clause alone. Input errors (the same input is always
refused again), conflicts, storage and unforeseen failures are not outcomes and leave no
record: a retry runs the command afresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from ledger.domain import codes
from ledger.domain.context import UNRECORDED_ROLE, Ctx
from ledger.domain.errors import CommandIdReused, LedgerError, NotFound, RuleViolation
from ledger.domain.ids import command_record_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.topics import topic


@topic("command/Event")
class CommandEvent(Aggregate.Event):
    class_version = 1
    command_id: str


def _actor_unrecorded(state: dict[str, Any]) -> None:
    """v1 records were written before the actor was: they say so, not who."""
    state["actor"] = {"key_id": None, "role": UNRECORDED_ROLE}


@topic("command/Recorded")
class CommandRecorded(CommandEvent, Aggregate.Created):
    class_version = 2
    command_type: str
    payload_digest: str
    outcome: dict[str, Any]
    actor: dict[str, str | None]  # Actor.as_dict(): the API key's id and role, or local

    upcast_v1_v2 = staticmethod(_actor_unrecorded)

    def apply(self, agg: Any) -> None:
        agg.command_type = self.command_type
        agg.payload_digest = self.payload_digest
        agg.outcome = self.outcome
        agg.refusal = None
        agg.actor = self.actor


@topic("command/Refused")
class CommandRefused(CommandEvent, Aggregate.Created):
    class_version = 2
    command_type: str
    payload_digest: str
    code: str
    clause: str
    actor: dict[str, str | None]

    upcast_v1_v2 = staticmethod(_actor_unrecorded)

    def apply(self, agg: Any) -> None:
        agg.command_type = self.command_type
        agg.payload_digest = self.payload_digest
        agg.outcome = None
        agg.refusal = {"code": self.code, "clause": self.clause}
        agg.actor = self.actor


# The refusals that are outcomes of a command (decisions on the ledger's state), remembered.
REMEMBERED_REFUSALS = (RuleViolation, NotFound)


class CommandRecord(JournaledAggregate):
    TOPIC = "mall-ledger/command"
    Event = CommandEvent
    Created = CommandRecorded

    if TYPE_CHECKING:
        command_type: str
        payload_digest: str
        outcome: dict[str, Any] | None
        refusal: dict[str, str] | None
        actor: dict[str, str | None]

    @classmethod
    def record(
        cls, ctx: Ctx, command_type: str, payload_digest: str, outcome: dict[str, Any]
    ) -> CommandRecord:
        return cls._create(
            CommandRecorded,
            id=command_record_id(ctx.command_id),
            timestamp=ctx.at,
            command_id=ctx.command_id,
            command_type=command_type,
            payload_digest=payload_digest,
            outcome=outcome,
            actor=ctx.actor.as_dict(),
        )

    @classmethod
    def refuse(
        cls, ctx: Ctx, command_type: str, payload_digest: str, refusal: LedgerError
    ) -> CommandRecord:
        return cls._create(
            CommandRefused,
            id=command_record_id(ctx.command_id),
            timestamp=ctx.at,
            command_id=ctx.command_id,
            command_type=command_type,
            payload_digest=payload_digest,
            code=refusal.code,
            clause=refusal.clause,
            actor=ctx.actor.as_dict(),
        )

    def refused_again(self, command_id: str) -> LedgerError | None:
        """The recorded refusal, to raise for a retry; None if the command was accepted."""
        if self.refusal is None:
            return None
        code, clause = self.refusal["code"], self.refusal["clause"]
        message = f"{self.command_type} {command_id} was refused {code} when first sent"
        entry = codes.BY_CODE[code]  # a stored code stays in the catalogue for good
        again: LedgerError = (
            NotFound(message)
            if entry is codes.NOT_FOUND
            else RuleViolation(entry, message, clause=clause)  # the clause cited the first time
        )
        again.remembered = True
        return again

    def check_same_payload(self, command_id: str, same_payload: bool) -> None:
        """Raises CommandIdReused unless the retry's payload matched this record's digest
        (``same_payload``, decided by ledger/payload_digest.py: the key is outside the domain)."""
        if not same_payload:
            raise CommandIdReused(
                f"command_id {command_id} was used for a different {self.command_type} command"
            )
