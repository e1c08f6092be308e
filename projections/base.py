"""What a projection is: tables, a dispatch table of handlers keyed by event topic, a version.

Adding an event type to a projection is one entry in its ``handlers`` mapping. Bumping
``version`` marks the live tables as stale: ``ledger projections run`` then skips the
projection and asks for ``ledger projections rebuild NAME``, which swaps in tables built by
the new code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from projections.batch import Batch
from projections.events import Event
from projections.schema import Table

Handler = Callable[[Event, Batch], None]
Prefetch = Callable[[Sequence[Event], Batch], None]
Finish = Callable[[Batch], None]

STREAM_ID = "stream_id"


def topic_of(event_class: type) -> str:
    """The stable topic ``ledger.domain.topics.topic`` gave an event class."""
    return str(event_class.TOPIC)  # type: ignore[attr-defined]


def no_prefetch(events: Sequence[Event], batch: Batch) -> None:
    pass


def no_finish(batch: Batch) -> None:
    pass


@dataclass(frozen=True)
class Projection:
    name: str
    version: int
    description: str
    tables: tuple[Table, ...]
    handlers: Mapping[str, Handler]
    # Relative CPU cost of a rebuild (from bench.rebuild): balances the rebuild's processes.
    rebuild_cost: int = 1
    # Extra rows to fetch up front, beyond those keyed by the events' stream ids.
    prefetch: Prefetch = field(default=no_prefetch)
    # Last changes before the batch is written (e.g. final group ids after merges).
    finish: Finish = field(default=no_finish)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(sorted(self.handlers))

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)

    def load(self, events: Sequence[Event], batch: Batch) -> None:
        """Fetch the rows the batch will need with one query per table."""
        streams = {e.stream for e in events}
        for table in self.tables:
            if table.load_by == STREAM_ID:
                batch.prefetch(table.name, streams)
        self.prefetch(events, batch)

    def apply(self, events: Sequence[Event], batch: Batch) -> None:
        handlers = self.handlers
        for event in events:
            handler = handlers.get(event.topic)
            if handler is not None:
                handler(event, batch)
        self.finish(batch)
