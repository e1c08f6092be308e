"""A sealed checkpoint of the Merkle log, recorded in the log itself (issue 12, item 4).

``ledger seal`` extends the RFC 9162 tree over the stored event rows and signs its head as a
C2SP ``tlog-checkpoint`` (replay/seal.py); the signed note is then saved as a
``CheckpointSealed`` event, one stream per tree size, so the log says when it was sealed and
by which key, and each checkpoint is itself covered by the next. The checkpoint's claim is in
the signed note, which anyone can check without trusting this event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from ledger.domain.context import Ctx
from ledger.domain.ids import stream_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.topics import topic


@topic("log/Event")
class LogEvent(Aggregate.Event):
    """An event of a ``LogCheckpoint`` stream."""

    class_version = 1
    command_id: str


@topic("log/CheckpointSealed")
class CheckpointSealed(LogEvent, Aggregate.Created):
    """The tree of the first ``size`` committed event rows (the last at ``last_position``)
    has root ``root_hash`` (base64), signed in ``note`` (a C2SP signed note), at the event's
    ``timestamp`` (the injected clock)."""

    size: int
    last_position: int
    root_hash: str
    note: str
    actor: dict[str, str | None]

    def apply(self, agg: Any) -> None:
        agg.size = self.size
        agg.last_position = self.last_position
        agg.root_hash = self.root_hash
        agg.note = self.note


class LogCheckpoint(JournaledAggregate):
    """One sealed checkpoint (a stream of one event per tree size)."""

    TOPIC = "mall-ledger/log-checkpoint"
    Event = LogEvent
    Created = CheckpointSealed

    if TYPE_CHECKING:
        size: int
        last_position: int
        root_hash: str
        note: str

    @classmethod
    def seal(
        cls, ctx: Ctx, size: int, last_position: int, root_hash: str, note: str
    ) -> LogCheckpoint:
        """The checkpoint of ``size`` leaves, sealed by ``ctx.actor`` at ``ctx.at``."""
        return cls._create(
            CheckpointSealed,
            id=checkpoint_stream(size),
            timestamp=ctx.at,
            command_id=ctx.command_id,
            size=size,
            last_position=last_position,
            root_hash=root_hash,
            note=note,
            actor=ctx.actor.as_dict(),
        )


def checkpoint_stream(size: int) -> Any:
    """The stream of the checkpoint of ``size`` leaves."""
    return stream_id("log-checkpoint", str(size))
