"""The read models an API process queries, a few at a time.

A ``ReadModels`` holds one connection and serves one thread at a time, and a query may wait
(``min_position``, up to ``wait_s``) for its projection: so the process keeps ``size`` of them
(default 2: on PostgreSQL each holds a connection, and a LISTEN one once it has waited) and
lends each to one query at a time, off the event loop. A query that finds all of them busy
waits up to ``wait_s + BORROW_MARGIN_S`` (past any other query's own wait) and is then
``STORAGE_UNAVAILABLE`` (503, with ``Retry-After``). After a storage failure the borrowed
read models reconnect if their connection broke, so a restarted database server is served
again.

Opened when the app starts, on the ledger's database after the ledger itself (a writer, which
has made a missing SQLite file by then): ``ReadModels.open`` creates the projections' tables
if no projection worker has run yet (empty, at position 0), and nothing else. Keeping them
current is ``ledger projections run``'s job, not the API's.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from ledger.domain.errors import StorageUnavailable
from ledger.driver_errors import storage_errors
from ledger.storage_url import StorageUrl
from projections.freshness import DEFAULT_TIMEOUT_S
from projections.queries import ReadModels

DEFAULT_READERS = 2
BORROW_MARGIN_S = 5.0
T = TypeVar("T")


class Readers:
    """``size`` opened ``ReadModels`` lent one query at a time (``run``)."""

    def __init__(
        self, url: StorageUrl | str | None, size: int, wait_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.wait_s = wait_s  # how long a query waits for min_position
        self.borrow_wait_s = wait_s + BORROW_MARGIN_S
        self._idle: queue.Queue[ReadModels] = queue.Queue()
        self._all: list[ReadModels] = []
        try:
            for _ in range(size):
                self._all.append(ReadModels.open(url))
                self._idle.put(self._all[-1])
        except BaseException:
            self.close()
            raise

    def call(self, query: Callable[[ReadModels], T]) -> T:
        """Run ``query`` on an idle read model (blocking: call it from a worker thread)."""
        try:
            models = self._idle.get(timeout=self.borrow_wait_s)
        except queue.Empty:
            raise StorageUnavailable(
                f"all {len(self._all)} read-model connections stayed busy for "
                f"{self.borrow_wait_s:g}s; retry"
            ) from None
        try:
            return query(models)
        except StorageUnavailable:
            _reconnect(models)
            raise
        finally:
            self._idle.put(models)

    async def run(self, query: Callable[[ReadModels], T]) -> T:
        """``call`` off the event loop."""
        return await run_in_threadpool(self.call, query)

    def close(self) -> None:
        """Close every read model (at the app's shutdown, once no query runs)."""
        for models in self._all:
            models.close()
        self._all.clear()


def _reconnect(models: ReadModels) -> None:
    """A fresh connection if the old one broke; if the server is still away, the next
    query on these read models tries again."""
    with contextlib.suppress(StorageUnavailable), storage_errors():
        models.db.reconnect()
