"""Positions, kept in the eventsourcing library's own tracking table.

The library's ``TrackingRecorder`` (single-row tracking: one row per name, moved forward by an
upsert that refuses to go backwards) creates the table and writes every position; the view
rows of a batch and its tracking record share one transaction, which is what makes applying
an event exactly-once: a batch that does not commit leaves both as they were.

One table serves every projection (SQLite has one ``tracking`` table per file; on PostgreSQL
it is ``projections_tracking``). Rows are named ``ledger:<projection><suffix>``: positions
belong to the ``ledger`` application's log and are compared only within it (DESIGN.md).
Besides the library's calls, rows are locked (``FOR UPDATE``: a second worker waits for the
first's batch), created at 0, reset when a rebuild is swapped in, and removed with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import TrackingRecorder

from ledger.library.tracking import insert_tracking, open_tracking_recorder
from ledger.storage import APPLICATION_NAME
from ledger.storage_url import StorageUrl
from projections.db import Db


def tracking_name(projection: str, suffix: str) -> str:
    return f"{APPLICATION_NAME}:{projection}{suffix}"


class TrackingTable:
    def __init__(self, recorder: TrackingRecorder | None, table: str, db: Db) -> None:
        self.recorder = recorder
        self.table = table
        self.db = db
        self.lock_clause = " FOR UPDATE" if db.kind == "postgres" else ""

    @classmethod
    def open(cls, url: StorageUrl, db: Db) -> TrackingTable:
        """Let the library create its tracking table (if missing) and keep its recorder."""
        recorder, table = open_tracking_recorder(url)
        return cls(recorder, table, db)

    def ensure(self, cur: Any, names: Sequence[str]) -> None:
        for name in names:
            cur.execute(
                self.db.sql(
                    f"INSERT INTO {self.table} (application_name, notification_id) "
                    "VALUES (%s, 0) ON CONFLICT (application_name) DO NOTHING"
                ),
                (name,),
            )

    def read(self, cur: Any, names: Sequence[str], *, lock: bool = False) -> dict[str, int]:
        """Positions by name; locked until the transaction ends when ``lock`` (PostgreSQL)."""
        found: dict[str, int] = {}
        for name in sorted(names):  # one order everywhere: no deadlock between two workers
            cur.execute(
                self.db.sql(
                    f"SELECT notification_id FROM {self.table} WHERE application_name = %s"
                    + (self.lock_clause if lock else "")
                ),
                (name,),
            )
            row = cur.fetchone()
            if row is not None:
                found[name] = int(row[0] or 0)
        return found

    def advance(self, cur: Any, name: str, position: int) -> None:
        """The library's own tracking insert, in the batch's transaction."""
        assert self.recorder is not None, "a read-only tracking table"
        insert_tracking(self.recorder, cur, name, position)

    def reset(self, cur: Any, name: str, position: int) -> None:
        cur.execute(
            self.db.sql(
                f"UPDATE {self.table} SET notification_id = %s WHERE application_name = %s"
            ),
            (position, name),
        )

    def remove(self, cur: Any, name: str) -> None:
        cur.execute(self.db.sql(f"DELETE FROM {self.table} WHERE application_name = %s"), (name,))
