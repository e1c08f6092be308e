"""The order in which a command's events happened, across all the streams it changed.

Each aggregate keeps its own pending events; a command that changes several streams
(an order and its coupons, say) needs them in the order they were triggered so the log
reads causally. Aggregates report every new event here while a journal is open.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Self

from eventsourcing.domain import Aggregate

_journal: ContextVar[list[Any] | None] = ContextVar("ledger_journal", default=None)


@contextmanager
def journal() -> Iterator[list[Any]]:
    """Collect, in trigger order, every event triggered inside the block."""
    events: list[Any] = []
    token = _journal.set(events)
    try:
        yield events
    finally:
        _journal.reset(token)


def _note(event: Any) -> None:
    events = _journal.get()
    if events is not None:
        events.append(event)


class JournaledAggregate(Aggregate):
    """Base of every ledger aggregate: reports each event it triggers to the journal."""

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        super().trigger_event(event_class, **kwargs)
        _note(self.pending_events[-1])

    @classmethod
    def _create(cls, event_class: Any, **kwargs: Any) -> Self:
        aggregate = super()._create(event_class, **kwargs)
        _note(aggregate.pending_events[-1])
        return aggregate
