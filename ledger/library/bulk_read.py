"""Load many streams with one query: the import path's answer to one SELECT per stream.

Reads the library's own events table through its datastore (same connection pool, same
row format) and folds each stream's events exactly as the library's repository does.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier

from ledger.library.tables import PG_POSITION_COLUMN, SQLITE_POSITION_COLUMN

# SQLite caps bound parameters per statement; PostgreSQL takes an array, but one huge
# array is no faster than a few moderate ones.
CHUNK_IDS = 500


def load_streams(app: Application[UUID], ids: Collection[UUID]) -> dict[UUID, Aggregate | None]:
    """Each of ``ids`` rebuilt from its events, or None where the stream does not exist."""
    found: dict[UUID, Aggregate | None] = dict.fromkeys(ids)
    for chunk in _chunks(sorted(ids), CHUNK_IDS):
        for stored in _select(app, chunk):
            event: Any = app.mapper.to_domain_event(stored)
            found[stored.originator_id] = event.mutate(found[stored.originator_id])  # type: ignore[index]  # keys are UUIDs; stubs say str
    return found


def events_upto(
    app: Application[UUID], ids: Collection[UUID], position: int
) -> dict[UUID, list[Any]]:
    """The domain events of each of ``ids`` stored at or before log ``position``, in stream
    order (empty for a stream that had none then): streams as they stood at one position."""
    found: dict[UUID, list[Any]] = {stream: [] for stream in ids}
    for chunk in _chunks(sorted(ids), CHUNK_IDS):
        for stored in _select(app, chunk, upto=position):
            found[stored.originator_id].append(app.mapper.to_domain_event(stored))  # type: ignore[index]  # keys are UUIDs; stubs say str
    return found


def _select(
    app: Application[UUID], ids: Sequence[UUID], upto: int | None = None
) -> list[StoredEvent]:
    recorder = app.recorder
    if isinstance(recorder, PostgresAggregateRecorder):
        return _select_postgres(recorder, ids, upto)
    assert isinstance(recorder, SQLiteAggregateRecorder), type(recorder)
    return _select_sqlite(recorder, ids, upto)


def _select_postgres(
    recorder: PostgresAggregateRecorder, ids: Sequence[UUID], upto: int | None
) -> list[StoredEvent]:
    # The bound only when asked: the import's bulk reads keep their plain index lookup.
    bounded = (
        SQL("") if upto is None else SQL("AND {} <= %s ").format(Identifier(PG_POSITION_COLUMN))
    )
    statement = SQL(
        "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
        "WHERE originator_id = ANY(%s) {bounded}ORDER BY originator_id, originator_version"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
        bounded=bounded,
    )
    with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, [list(ids)] + ([] if upto is None else [upto]))
        return [
            StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in curs.fetchall()
        ]


def _select_sqlite(
    recorder: SQLiteAggregateRecorder, ids: Sequence[UUID], upto: int | None
) -> list[StoredEvent]:
    marks = ",".join("?" * len(ids))
    bounded = "" if upto is None else f"AND {SQLITE_POSITION_COLUMN} <= ? "
    statement = (
        f"SELECT originator_id, originator_version, topic, state FROM "
        f"{recorder.events_table_name} WHERE originator_id IN ({marks}) "
        f"{bounded}ORDER BY originator_id, originator_version"
    )
    with recorder.datastore.transaction(commit=False) as c:
        c.execute(statement, [*(i.hex for i in ids)] + ([] if upto is None else [upto]))
        return [
            StoredEvent(
                originator_id=recorder.convert_originator_id(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"],
            )
            for row in c.fetchall()
        ]


def _chunks(items: Sequence[UUID], size: int) -> Iterator[Sequence[UUID]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
