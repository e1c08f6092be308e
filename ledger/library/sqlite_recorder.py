"""The library's SQLite recorder with the save-time check of streams only read
(ledger/library/read_check.py).

The library writes in a deferred transaction: its first insert takes the database's write
lock, and from then on no other connection (in this process or another) can commit, and this
transaction sees the latest state. So the check runs after the inserts, in the same
transaction; if a stream read has moved, ``StaleRead`` rolls the inserts back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from ledger.library.read_check import StaleRead, read_versions_of


class CheckedSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        reads = read_versions_of(kwargs)
        if reads:
            # One statement for the whole read set: a JSON object of stream id → version
            # (0: read as absent), so no limit on bound parameters applies.
            c.execute(
                "SELECT r.key AS id FROM json_each(?) AS r WHERE r.value <> coalesce("
                f"(SELECT max(e.originator_version) FROM {self.events_table_name} AS e "
                "WHERE e.originator_id = r.key), 0)",
                (orjson.dumps({i.hex: v for i, v in reads.items()}).decode(),),
            )
            changed = [self.convert_originator_id(row["id"]) for row in c.fetchall()]
            if changed:
                raise StaleRead(changed)
        return ids
