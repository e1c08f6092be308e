"""Time travel: an order's, an entitlement's or an account's state as of a moment or a log
position, with the events that led there (issue 12, item 1).

The stream's own events are read (by the library's stream index) and folded up to the last one
at or before the moment (its ``timestamp``, the command's time from the injected clock) or the
position; the cost grows with that stream's events, never with the log. The state is the
aggregate's fields as the domain keeps them, personal fields sealed as they are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ledger.application import Ledger
from ledger.domain.errors import InvalidCommand, NotFound
from ledger.domain.ids import account_id, entitlement_id, order_id
from ledger.library.positions import stream_positions

KINDS: dict[str, Callable[[str], UUID]] = {
    "order": order_id,
    "entitlement": entitlement_id,
    "account": account_id,
}
# Fields every stored event has; each event shows them once, not among its facts.
EVENT_HEADER = ("originator_id", "originator_version", "timestamp")


@dataclass(frozen=True)
class AsOf:
    """The stream ``kind``/``key`` at ``version`` (the event at ``position``): ``state`` (the
    aggregate's fields) and ``events`` (each with version, position, time, name, facts)."""

    kind: str
    key: str
    version: int
    position: int
    state: dict[str, Any]
    events: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "version": self.version,
            "position": self.position,
            "state": self.state,
            "events": self.events,
        }


def replay_as_of(
    ledger: Ledger, kind: str, key: str, *, at: datetime | None = None, position: int | None = None
) -> AsOf:
    """The stream's state as of ``at`` (a timezone-aware moment) or ``position`` (exactly one).

    Raises ``InvalidCommand`` naming ``--as-of``/``--position`` when both or neither are given,
    ``at`` has no offset, or ``position`` is beyond the log's head
    (the last position written); ``NotFound`` when the stream has no event by then."""
    if (at is None) == (position is None):
        raise InvalidCommand("--as-of", "give a moment (--as-of) or a log position (--position)")
    if at is not None and at.tzinfo is None:
        raise InvalidCommand("--as-of", "must carry an offset (2026-11-20T10:00:00+08:00)")
    # A position the log has not reached would answer with today's state as if it were
    # settled there: refused. A moment is not refused for being ahead of the clock: events
    # carry their command's time, which may be earlier than when they were written, so an
    # answer by moment is always "as the log knows it now" (the README says so).
    head = ledger.head_position()
    if position is not None and position > head:
        raise InvalidCommand("--position", f"is beyond the log's head, position {head}")
    stream = KINDS[kind](key)
    positions = stream_positions(ledger.app, stream)
    events: list[Any] = list(ledger.app.events.get(stream))
    kept = [
        e
        for e in events
        if (at is not None and e.timestamp <= at)
        or (position is not None and positions[e.originator_version] <= position)
    ]
    if not kept:
        raise NotFound(f"the {kind} has no event by then")
    version = kept[-1].originator_version
    aggregate: Any = ledger.app.repository.get(stream, version=version)
    state = {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}
    return AsOf(
        kind,
        key,
        version,
        positions[version],
        state,
        [_event(e, positions[e.originator_version]) for e in kept],
    )


def _event(event: Any, position: int) -> dict[str, Any]:
    return {
        "version": event.originator_version,
        "position": position,
        "at": event.timestamp,
        "event": type(event).__name__,
        "facts": {k: v for k, v in vars(event).items() if k not in EVENT_HEADER},
    }
