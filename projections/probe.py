"""Where the projections stand, asked for now and then by a long-running process that keeps
no projections connection of its own: the API's ``/healthz`` and ``/metrics``, and (on the
probe's ``runtime()``) its queries of the read models.

Each ``StatusProbe.status()`` is ``projections.status.status`` on a connection held for that
one read: on PostgreSQL one of the process's shared pool (ledger/pg_pool.py), so the API stays
within ``LEDGER_POOL_SIZE``; on SQLite one of its own, opened without creating the file, so a
ledger file that went away is reported, not silently replaced by an empty one. Both are bounded
by ``timeout_s``: the wait for a pooled connection, every statement (``statement_timeout``),
SQLite's busy wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import Mapper

from ledger.driver_errors import storage_errors
from ledger.library.tracking import open_tracking_recorder
from ledger.storage import opening
from ledger.storage_url import StorageUrl
from projections.db import Db
from projections.db_postgres import pooled
from projections.db_sqlite import SqliteDb
from projections.engine import Engine, Runtime
from projections.events import Decoder
from projections.status import status
from projections.tracking import TrackingTable

PROBE_TIMEOUT_S = 2.0


class StatusProbe:
    """``status()`` on demand (see the module docstring); ``open`` makes one."""

    def __init__(
        self,
        url: StorageUrl,
        decoder: Decoder,
        tracking_table: str,
        timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.decoder = decoder
        self.tracking_table = tracking_table
        self.timeout_s = timeout_s

    @classmethod
    def open(
        cls, url: StorageUrl, mapper: Mapper[Any], timeout_s: float = PROBE_TIMEOUT_S
    ) -> StatusProbe:
        """A probe of the ledger at ``url`` (which must exist), decoding with the ledger's
        ``mapper``. Makes the projections' tracking table if it is missing (under the set-up
        lock, as a writer's start does), so a ledger no worker has run on yet reads as every
        projection at position 0. Raises ``StorageUnavailable`` as ``open_ledger`` does."""
        with opening(url, create=False):
            _recorder, table = open_tracking_recorder(url)
        return cls(url, Decoder(mapper), table, timeout_s)

    def status(self) -> dict[str, Any]:
        """``projections.status.status`` now: ``{"head", "projections": [{"name",
        "position", "lag_events", "stopped", …}], "stopped": [names]}``. Raises
        ``StorageUnavailable`` when the database cannot be reached, fails, or takes longer
        than ``timeout_s`` for a connection or a statement."""
        with storage_errors(), self.runtime() as rt:
            return status(rt)

    @contextmanager
    def runtime(self) -> Iterator[Runtime]:
        """A read-only ``Runtime`` on a connection held for one read (see the module
        docstring): ``status`` reads on it, and so do the API's queries (api/readers.py)."""
        with self._db() as db:
            tracking = TrackingTable(None, self.tracking_table, db)  # read-only
            yield Runtime(db, tracking, Engine(db, tracking, self.decoder), self.url)

    @contextmanager
    def _db(self) -> Iterator[Db]:
        if self.url.pg is not None:
            with pooled(self.url, self.timeout_s) as pg:
                yield pg
            return
        assert self.url.sqlite_path is not None
        db = SqliteDb(self.url.sqlite_path, create=False, busy_timeout_s=self.timeout_s)
        try:
            yield db
        finally:
            db.close()
