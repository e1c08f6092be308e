"""The aggregates one command (or one import batch) reads and changes, saved together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate

from ledger.commands import Command
from ledger.domain.context import Ctx
from ledger.domain.policy import Policy
from ledger.sealing import Sealer
from ledger.stream_cache import StreamCache

A = TypeVar("A", bound=Aggregate)
C = TypeVar("C", bound=Command)


class UnitOfWork:
    """Loads each stream once and remembers it across the commands of a batch; tells
    which events the current command wrote, for the application to save.

    A new stream counts only once a command calls ``add``, so one that a refused command
    made and dropped is never written.
    """

    def __init__(
        self,
        repository: Repository[UUID],
        sealer: Sealer,
        policy: Policy,
        cache: StreamCache | None = None,
        *,
        open_orders: Callable[[str], set[str]],
    ) -> None:
        self.repository = repository
        # A subject's orders being performed, from the log (ledger/open_orders.py): what an
        # erasure request must not take the data of.
        self.open_orders = open_orders
        self.cache = cache
        self.sealer = sealer
        self.policy = policy
        self.ctx: Ctx | None = None
        self._loaded: dict[UUID, Aggregate | None] = {}
        # The version each stream had when it was read (0: absent), checked at save time.
        self._read_at: dict[UUID, int] = {}
        # Set when a refused command had already changed a stream it holds: the batch
        # holding it can no longer be saved whole.
        self.dirty = False
        self.result: dict[str, Any] = {}

    def begin(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.result = {}

    @property
    def now(self) -> Ctx:
        assert self.ctx is not None, "begin() a command first"
        return self.ctx

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        if aggregate_id not in self._loaded:
            cached = self.cache.take(aggregate_id) if self.cache is not None else None
            try:
                self._read(aggregate_id, cached or self.repository.get(aggregate_id))
            except AggregateNotFoundError:
                self._read(aggregate_id, None)
        found = self._loaded[aggregate_id]
        assert found is None or isinstance(found, cls), f"{aggregate_id} is not a {cls.__name__}"
        return found

    def version(self, aggregate_id: UUID) -> int:
        """The stream's version as this unit of work holds it (0: no such stream)."""
        found = self.get(Aggregate, aggregate_id)
        return 0 if found is None else int(found.version)

    def take_cached(self, ids: set[UUID]) -> set[UUID]:
        """Take what the cache holds of ``ids``; return the ids still to be read."""
        if self.cache is None:
            return ids
        missing = set()
        for aggregate_id in ids:
            cached = self.cache.take(aggregate_id)
            if cached is None:
                missing.add(aggregate_id)
            elif aggregate_id not in self._loaded:
                self._read(aggregate_id, cached)
        return missing

    def prefetch(self, loaded: dict[UUID, Aggregate | None]) -> None:
        """Streams read in bulk; those this unit of work already holds are kept as they are."""
        for aggregate_id, aggregate in loaded.items():
            if aggregate_id not in self._loaded:
                self._read(aggregate_id, aggregate)

    def _read(self, aggregate_id: UUID, aggregate: Aggregate | None) -> None:
        self._loaded[aggregate_id] = aggregate
        self._read_at[aggregate_id] = aggregate.version if aggregate is not None else 0

    def reads_not_written(self, events: list[Any]) -> dict[UUID, int]:
        """Streams read but not written by ``events``, at the version they were read: the
        save checks they are still there (a written stream clashes on its own)."""
        if not events:
            return {}
        written = {e.originator_id for e in events}
        return {i: v for i, v in self._read_at.items() if i not in written}

    def aggregates(self) -> list[Aggregate]:
        return [a for a in self._loaded.values() if a is not None]

    def add(self, aggregate: Aggregate) -> None:
        self._loaded[aggregate.id] = aggregate

    def kept(self, triggered: list[Any]) -> list[Any]:
        """Of the events a command triggered (in order), those on streams this unit of
        work holds: a stream made and dropped by a refused check is not among them."""
        return [e for e in triggered if self._loaded.get(e.originator_id) is not None]


# A command handler for commands of class C: runs every check, then changes the aggregates
# it loaded or added. ``ledger.handlers.registry`` keys each by the class it takes.
Handler = Callable[[C, UnitOfWork], None]
