"""How the API's queries reach the read models: a connection per query, none kept.

A query reads on a ``ReadModels`` made for it over ``StatusProbe.runtime()``: on PostgreSQL a
connection of the process's shared pool (ledger/pg_pool.py), held for that one read, so the
API stays within ``LEDGER_POOL_SIZE`` however many queries run; on SQLite a connection of its
own. Each statement is bounded by ``QUERY_TIMEOUT_S`` (``statement_timeout``; SQLite's busy
wait), as is the wait for a pooled connection: past it, ``STORAGE_UNAVAILABLE`` (503).

A query with ``min_position`` first waits, up to ``wait_s``, until the projection it reads has
applied that position: it looks on a connection borrowed for the look only, and between looks
(2 ms growing to 50 ms) holds none, so waiting readers never starve the writers of the pool.
It ends in ``ProjectionBehind`` (409) or, at once, ``ProjectionStopped`` (503).

Opened when the app starts, on the ledger's database after the ledger itself (a writer,
which has made a missing SQLite file by then): the projections' tables are created if no
worker has run yet (empty, at position 0) and nothing else. Keeping them current is
``ledger projections run``'s job, not the API's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from eventsourcing.persistence import Mapper
from starlette.concurrency import run_in_threadpool

from ledger.driver_errors import storage_errors
from ledger.storage_url import StorageUrl
from projections.engine import ensure_live
from projections.freshness import DEFAULT_TIMEOUT_S, POLL_S, ProjectionBehind
from projections.probe import StatusProbe
from projections.queries import ReadModels
from projections.registry import PROJECTIONS

QUERY_TIMEOUT_S = 10.0
T = TypeVar("T")


class Readers:
    """Read-model queries for one app (see the module docstring)."""

    def __init__(self, probe: StatusProbe, wait_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.probe = probe
        self.wait_s = wait_s  # how long a query waits for its min_position

    @classmethod
    def open(
        cls, url: StorageUrl, mapper: Mapper[Any], wait_s: float = DEFAULT_TIMEOUT_S
    ) -> Readers:
        """Readers of the ledger at ``url`` (which must exist), decoding with its ``mapper``;
        the projections' tables are made if missing. ``StorageUnavailable`` as for a probe."""
        probe = StatusProbe.open(url, mapper, timeout_s=QUERY_TIMEOUT_S)
        with storage_errors(), probe.runtime() as rt:
            ensure_live(rt.db, rt.tracking, PROJECTIONS)
        return cls(probe, wait_s)

    def call(
        self, query: Callable[[ReadModels], T], projection: str, min_position: int | None
    ) -> T:
        """``query`` on read models of a connection of its own, once ``projection`` has
        applied ``min_position`` (blocking: call it from a worker thread)."""
        if min_position is not None:
            self.wait(projection, min_position)
        with storage_errors(), self.probe.runtime() as rt:
            return query(ReadModels(rt, listen=False))

    def wait(self, projection: str, position: int) -> None:
        """Return once ``projection`` has applied ``position``; ``ProjectionBehind`` after
        ``wait_s``, ``ProjectionStopped`` as soon as it is seen stopped before it."""
        deadline = time.monotonic() + self.wait_s
        delay = POLL_S[0]
        while True:
            try:
                with storage_errors(), self.probe.runtime() as rt:
                    ReadModels(rt, listen=False).wait_for(position, [projection], timeout_s=0)
                return
            except ProjectionBehind as behind:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProjectionBehind(behind.behind, position, self.wait_s) from None
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, POLL_S[1])

    async def run(
        self,
        query: Callable[[ReadModels], T],
        projection: str,
        min_position: int | None = None,
    ) -> T:
        """``call`` off the event loop."""
        return await run_in_threadpool(self.call, query, projection, min_position)
