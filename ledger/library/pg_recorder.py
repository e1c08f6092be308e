"""The library's PostgreSQL recorder, writing large batches of events with binary COPY.

The library inserts a batch as one ``INSERT … SELECT FROM unnest(%s::stored_event[])
RETURNING notification_id`` in pipeline mode: psycopg writes the composite array as text
(about a fifth of an import's time) and the server parses it back. COPY is not allowed in
pipeline mode, so a batch of at least ``COPY_MIN_EVENTS`` events is written here instead, in
one transaction that does what the library's does, in the same order: take the library's
``EXCLUSIVE`` lock on the events table (positions commit in the order they are issued), queue
its ``NOTIFY``, then ``COPY … FROM STDIN (FORMAT BINARY)``.

The positions: under that lock no other insert takes ids from the table's sequence, so the
batch's ids are the ``len(events)`` values after the sequence's value when the lock was taken,
in row order. That is checked against the sequence after the COPY; if anything else did take
ids meanwhile, they are read back by primary key instead. A duplicate (stream, version) fails
the COPY with a unique violation, which the library's connection maps to its
``IntegrityError`` as for its own insert. Smaller batches (one command) take the library's
pipelined path.

Both paths check the streams the save only read (``read_versions``, ledger/library/read_check.py)
right after the table lock: no other insert can commit until this transaction ends, so one
query over the whole read set tells whether any of them moved since it was read; if one did,
``StaleRead`` is raised before anything is inserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import Cursor, InterfaceError, OperationalError
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal

from ledger.library.read_check import ReadVersions, StaleRead, read_versions_of

COPY_MIN_EVENTS = 32
COPY_TYPES = ("uuid", "int8", "text", "bytea")


class CopyApplicationRecorder(PostgresApplicationRecorder):
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # The library's database function (off: library_env) inserts in one statement with
        # no place for the read check; only tests turn it on, to write without the lock.
        if self.datastore.enable_db_functions or len(stored_events) < COPY_MIN_EVENTS:
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)  # the library's hook, first
            self._lock_table(curs)
            self._check_reads(curs, read_versions_of(kwargs))
            self._notify_channel(curs)
            before = self._sequence_value(curs)
            self._copy(curs, stored_events)
            after = self._sequence_value(curs)
            if after - before == len(stored_events):
                return list(range(before + 1, after + 1))
            return self._ids_by_key(curs, stored_events)

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        """The library's small-batch path (lock, notify, insert) with the read check after
        the lock; the insert itself is the library's aggregate-recorder statement."""
        self._lock_table(curs)
        self._check_reads(curs, read_versions_of(kwargs))
        self._notify_channel(curs)
        PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events, **kwargs)

    def _check_reads(self, curs: Cursor[DictRow], reads: ReadVersions) -> None:
        """One query for the whole read set; raises StaleRead naming the streams that moved
        (a stream read as absent is given as version 0)."""
        if not reads:
            return
        curs.execute(
            SQL(
                "SELECT k.id FROM unnest(%s::uuid[], %s::int8[]) AS k(id, version) "
                "WHERE k.version <> coalesce((SELECT max(e.originator_version) FROM {0} AS e "
                "WHERE e.originator_id = k.id), 0)"
            ).format(self._table()),
            (list(reads), list(reads.values())),
        )
        changed = [row["id"] for row in curs.fetchall()]
        if changed:
            raise StaleRead(changed)

    def _table(self) -> SQL | Any:
        return SQL("{0}.{1}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )

    def _sequence_value(self, curs: Cursor[DictRow]) -> int:
        """The last id the table's sequence issued (0 before the first)."""
        table = f'"{self.datastore.schema}"."{self.events_table_name}"'
        curs.execute(
            SQL(
                "SELECT pg_sequence_last_value("
                "pg_get_serial_sequence({0}, 'notification_id')::regclass) AS last"
            ).format(Literal(table))
        )
        found = curs.fetchone()
        assert found is not None
        return int(found["last"] or 0)

    def _copy(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent]) -> None:
        statement = SQL(
            "COPY {0} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
        ).format(self._table())
        with curs.copy(statement) as copy:
            copy.set_types(list(COPY_TYPES))
            for e in stored_events:
                copy.write_row((e.originator_id, e.originator_version, e.topic, e.state))

    def _ids_by_key(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent]) -> list[int]:
        curs.execute(
            SQL(
                "SELECT e.notification_id FROM unnest(%s::uuid[], %s::int8[]) "
                "WITH ORDINALITY AS k(id, version, n) JOIN {0} AS e "
                "ON e.originator_id = k.id AND e.originator_version = k.version ORDER BY k.n"
            ).format(self._table()),
            (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
            ),
        )
        ids = [int(row["notification_id"]) for row in curs.fetchall()]
        if len(ids) != len(stored_events):
            msg = (
                f"Couldn't get all notification IDs (got {len(ids)}, expected {len(stored_events)})"
            )
            raise ProgrammingError(msg)
        return ids
