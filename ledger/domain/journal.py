"""The order in which a command's events happened, across all the streams it changed.

Each aggregate keeps its own pending events; a command that changes several streams
(an order and its coupons, say) needs them in the order they were triggered so the log
reads causally. Aggregates report every new event here while a journal is open.

Every event of every aggregate passes through ``JournaledAggregate``, so the one rule that
holds for all streams lives here too: within a stream, time never runs backwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Self

from eventsourcing.domain import Aggregate

from ledger.domain import codes
from ledger.domain.errors import RuleViolation

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
    """Base of every ledger aggregate: reports each event it triggers to the journal and
    refuses an event dated before the stream's last one."""

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        self.check_time_forward(kwargs["timestamp"])
        super().trigger_event(event_class, **kwargs)
        _note(self.pending_events[-1])

    def check_time_forward(self, at: datetime) -> None:
        """Raise ``TIME_BEFORE_STREAM`` if ``at`` is before this stream's last event.

        A record kept under ECL 31 must be true to the order things happened in: an event
        dated before its predecessor (a delivery before the shipment, a payment before the
        submission) would let every rule that counts time from an event read a false
        history. Equal times are allowed (one command writes several events at one time).
        The message names the stream's last time (not personal data) and, for an order, its
        number; never an account number.
        """
        if at < self.modified_on:
            raise RuleViolation(
                codes.TIME_BEFORE_STREAM,
                f"the command's time {at.isoformat()} is before the last event of "
                f"{self.stream_label()} at {self.modified_on.isoformat()}",
            )

    def stream_label(self) -> str:
        """How refusals name this stream: its kind, never a personal identifier."""
        return f"this {type(self).__name__} stream"

    @classmethod
    def _create(cls, event_class: Any, **kwargs: Any) -> Self:
        aggregate = super()._create(event_class, **kwargs)
        _note(aggregate.pending_events[-1])
        return aggregate
