"""Positions and versions of stored events, read from the library's events table.

A command's record is the last event its transaction writes, so the record's position is
the command's position; a retry (an HTTP ``Idempotency-Key`` sent again) finds it here and
answers with the position the first send was given. A query of a read model answers as of
a position; the version a stream had then is its ``ETag`` (what ``If-Match`` compares).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier

from ledger.library.tables import PG_POSITION_COLUMN, SQLITE_POSITION_COLUMN


def position_of(app: Application[UUID], originator_id: UUID, version: int) -> int | None:
    """The position of event ``version`` of stream ``originator_id``; None if not stored."""
    return _number(
        app,
        "SELECT {position} AS found FROM {table} "
        "WHERE originator_id = %s AND originator_version = %s",
        originator_id,
        version,
    )


def version_at(app: Application[UUID], originator_id: UUID, position: int) -> int | None:
    """The version of stream ``originator_id`` as of log ``position``: its last event's
    ``originator_version`` at or before it; None if it had none (one stream's rows, by the
    library's (originator_id, originator_version) index)."""
    return _number(
        app,
        "SELECT max(originator_version) AS found FROM {table} "
        "WHERE originator_id = %s AND {position} <= %s",
        originator_id,
        position,
    )


def stream_positions(app: Application[UUID], originator_id: UUID) -> dict[int, int]:
    """The position of every stored event of stream ``originator_id``, by version (one
    stream's rows, by the library's (originator_id, originator_version) index)."""
    rows = _rows(
        app,
        "SELECT originator_version AS version, {position} AS found FROM {table} "
        "WHERE originator_id = %s AND originator_version >= %s",
        originator_id,
        0,
    )
    return {int(row["version"]): int(row["found"]) for row in rows}


def _number(app: Application[UUID], query: str, originator_id: UUID, value: int) -> int | None:
    """The one number ``query`` finds (``{table}``, ``{position}``: the events table and its
    position column) for the stream and ``value``; None if none."""
    rows = _rows(app, query, originator_id, value)
    row = rows[0] if rows else None
    return None if row is None or row["found"] is None else int(row["found"])


def _rows(app: Application[UUID], query: str, originator_id: UUID, value: int) -> list[Any]:
    """The rows of ``query`` (``{table}``, ``{position}``: the events table and its position
    column) for the stream and ``value``, as mappings."""
    recorder = app.recorder
    if isinstance(recorder, PostgresAggregateRecorder):
        statement = SQL(query).format(
            position=Identifier(PG_POSITION_COLUMN),
            table=SQL("{}.{}").format(
                Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
            ),
        )
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, [originator_id, value])
            return list(curs.fetchall())
    assert isinstance(recorder, SQLiteAggregateRecorder), type(recorder)
    text = query.format(position=SQLITE_POSITION_COLUMN, table=recorder.events_table_name)
    with recorder.datastore.transaction(commit=False) as c:
        c.execute(text.replace("%s", "?"), [originator_id.hex, value])
        return list(c.fetchall())
