"""A regulator's request for records, and the export that answered it (ECL 25; issue 12,
item 7): both events, on one stream per request.

ECL 25 obliges the operator to provide records when an authority asks under the law; PIPL
19/47 keep what leaves minimal: personal data goes out in clear only when the request's legal
basis requires it (``personal_data``), otherwise as pseudonyms keyed per export.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from ledger.domain.context import Ctx
from ledger.domain.errors import InvalidCommand
from ledger.domain.ids import stream_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.topics import topic

REQUEST_ID_RE = re.compile(r"exp-[0-9a-f]{12}")  # an export request's id
MAX_TEXT_CHARS = 200  # an authority's name, a legal basis: one line of free text


@dataclass(frozen=True)
class ExportScope:
    """Which orders an export covers: submitted in ``[since, until)``, of ``seller``, of
    ``account``, with a line of ``sku``, shipped to ``region``; None is no filter, and every
    filter given must hold (any combination)."""

    since: datetime | None = None
    until: datetime | None = None
    seller: str | None = None
    account: str | None = None
    sku: str | None = None
    region: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()
        }


@topic("export/Event")
class ExportEvent(Aggregate.Event):
    """An event of an ``ExportRequest`` stream."""

    class_version = 1
    command_id: str


@topic("export/Requested")
class ExportRequested(ExportEvent, Aggregate.Created):
    """``authority`` asked, under ``reference`` and legal ``basis``, for the records of
    ``scope`` (``ExportScope.as_dict``), with personal data in clear if ``personal_data``."""

    request_id: str
    authority: str
    reference: str
    basis: str
    scope: dict[str, Any]
    personal_data: bool
    actor: dict[str, str | None]

    def apply(self, agg: Any) -> None:
        agg.request_id = self.request_id
        agg.authority = self.authority
        agg.reference = self.reference
        agg.basis = self.basis
        agg.scope = dict(self.scope)
        agg.personal_data = self.personal_data
        agg.exports = []


@topic("export/Written")
class ExportWritten(ExportEvent):
    """The export was written from the checkpoint of ``checkpoint_size`` events: its files'
    ``counts`` of records and the SHA-256 of its manifest (what its signature covers)."""

    checkpoint_size: int
    counts: dict[str, int]
    manifest_sha256: str
    actor: dict[str, str | None]

    def apply(self, agg: Any) -> None:
        agg.exports.append({"checkpoint_size": self.checkpoint_size, "at": self.timestamp})


class ExportRequest(JournaledAggregate):
    """One regulator's request and the exports written for it."""

    TOPIC = "mall-ledger/export-request"
    Event = ExportEvent
    Created = ExportRequested

    if TYPE_CHECKING:
        request_id: str
        authority: str
        reference: str
        basis: str
        scope: dict[str, Any]
        personal_data: bool
        exports: list[dict[str, Any]]

    @classmethod
    def request(
        cls,
        ctx: Ctx,
        request_id: str,
        authority: str,
        reference: str,
        basis: str,
        scope: ExportScope,
        personal_data: bool,
    ) -> ExportRequest:
        """Record the request (ECL 25). Raises ``InvalidCommand`` naming ``scope.until`` for a
        period that ends before it starts."""
        if scope.since and scope.until and scope.until <= scope.since:
            raise InvalidCommand("scope.until", "must be after the period's start")
        return cls._create(
            ExportRequested,
            id=export_stream(request_id),
            timestamp=ctx.at,
            command_id=ctx.command_id,
            request_id=request_id,
            authority=authority,
            reference=reference,
            basis=basis,
            scope=scope.as_dict(),
            personal_data=personal_data,
            actor=ctx.actor.as_dict(),
        )

    def written(self, ctx: Ctx, size: int, counts: dict[str, int], manifest_sha256: str) -> None:
        """Record an export of this request written from the checkpoint of ``size``."""
        self.trigger_event(
            ExportWritten,
            timestamp=ctx.at,
            command_id=ctx.command_id,
            checkpoint_size=size,
            counts=dict(counts),
            manifest_sha256=manifest_sha256,
            actor=ctx.actor.as_dict(),
        )

    def stream_label(self) -> str:
        return f"export request {self.request_id}"


def export_stream(request_id: str) -> Any:
    """The stream of export request ``request_id``."""
    return stream_id("export-request", request_id)


def scope_of(stored: dict[str, Any]) -> ExportScope:
    """The ``ExportScope`` a request stored."""
    return ExportScope(
        since=datetime.fromisoformat(stored["since"]) if stored.get("since") else None,
        until=datetime.fromisoformat(stored["until"]) if stored.get("until") else None,
        seller=stored.get("seller"),
        account=stored.get("account"),
        sku=stored.get("sku"),
        region=stored.get("region"),
    )
