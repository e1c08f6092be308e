"""Idempotency: one stream per command_id, written in the same transaction as the
command's events. A retry finds it and gets the original outcome; the same id with a
different payload is refused (KurrentDB deduplicates by event id the same way)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from ledger.domain.context import Ctx
from ledger.domain.errors import CommandIdReused
from ledger.domain.ids import command_record_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.topics import topic


@topic("command/Event")
class CommandEvent(Aggregate.Event):
    class_version = 1
    command_id: str


@topic("command/Recorded")
class CommandRecorded(CommandEvent, Aggregate.Created):
    command_type: str
    payload_digest: str
    outcome: dict[str, Any]

    def apply(self, agg: Any) -> None:
        agg.command_type = self.command_type
        agg.payload_digest = self.payload_digest
        agg.outcome = self.outcome


class CommandRecord(JournaledAggregate):
    TOPIC = "mall-ledger/command"
    Event = CommandEvent
    Created = CommandRecorded

    if TYPE_CHECKING:
        command_type: str
        payload_digest: str
        outcome: dict[str, Any]

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
        )

    def check_same_payload(self, command_id: str, payload_digest: str) -> None:
        if payload_digest != self.payload_digest:
            raise CommandIdReused(
                f"command_id {command_id} was used for a different {self.command_type} command"
            )
