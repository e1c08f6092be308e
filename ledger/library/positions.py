"""The log position of one stored event, read from the library's events table.

A command's record is the last event its transaction writes, so the record's position is
the command's position; a retry (an HTTP ``Idempotency-Key`` sent again) finds it here and
answers with the position the first send was given.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier

from ledger.library.tables import PG_POSITION_COLUMN, SQLITE_POSITION_COLUMN


def position_of(app: Application[UUID], originator_id: UUID, version: int) -> int | None:
    """The position of event ``version`` of stream ``originator_id``; None if not stored."""
    recorder = app.recorder
    if isinstance(recorder, PostgresAggregateRecorder):
        statement = SQL(
            "SELECT {position} FROM {schema}.{table} "
            "WHERE originator_id = %s AND originator_version = %s"
        ).format(
            position=Identifier(PG_POSITION_COLUMN),
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, [originator_id, version])
            row = curs.fetchone()
            return None if row is None else int(row[PG_POSITION_COLUMN])
    assert isinstance(recorder, SQLiteAggregateRecorder), type(recorder)
    query = (
        f"SELECT {SQLITE_POSITION_COLUMN} AS position FROM {recorder.events_table_name} "
        "WHERE originator_id = ? AND originator_version = ?"
    )
    with recorder.datastore.transaction(commit=False) as c:
        c.execute(query, [originator_id.hex, version])
        found = c.fetchone()
        return None if found is None else int(found["position"])
