"""PostgreSQL: the read models in the ledger's database (production).

Rows go in by binary COPY (into a session-local staging table for updates); the worker wakes
on the library writer's NOTIFY; holes in the positions are settled by looking for writers
that may still commit them (``unsettled_writers``).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import make_conninfo
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from ledger.library.tables import (
    PG_EVENTS_TABLE,
    PG_POSITION_COLUMN,
    PG_SCHEMA,
)
from ledger.pg_pool import lease_for
from ledger.storage_url import StorageUrl
from projections.db import (
    EXCLUSIVE_WAIT_S,
    PROGRESS_CHANNEL,
    Convert,
    Db,
    Listener,
    ProjectionsBusy,
    Row,
    json_in,
    json_out,
)
from projections.events import RawEvent
from projections.schema import BOOL, INT, JSON, TEXT, TS, Table

PG_CONNECT_TIMEOUT_S = 10
_PG_ARRAY = {TEXT: "text[]", INT: "int8[]", BOOL: "bool[]", TS: "timestamptz[]", JSON: "text[]"}
_PG_COPY = {TEXT: "text", INT: "int8", BOOL: "bool", TS: "timestamptz", JSON: "text"}
_WRITER_LOCK_MODES = (
    "RowExclusiveLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)


class PgDb(Db):
    kind = "postgres"
    ddl_types = {TEXT: "text", INT: "bigint", BOOL: "boolean", TS: "timestamptz", JSON: "text"}
    blob_type = "bytea"
    to_db: dict[str, Convert | None] = {TEXT: None, INT: None, BOOL: None, TS: None, JSON: json_in}
    from_db: dict[str, Convert | None] = {
        TEXT: None,
        INT: None,
        BOOL: None,
        TS: None,
        JSON: json_out,
    }
    id_column = PG_POSITION_COLUMN

    def __init__(
        self,
        url: StorageUrl,
        events_table: str = PG_EVENTS_TABLE,
        schema: str = PG_SCHEMA,
        *,
        conn: psycopg.Connection[Any] | None = None,
    ):
        """On a connection of its own, or on ``conn`` (lent by its owner, who closes it:
        ``pooled``)."""
        super().__init__(f'"{schema}"."{events_table}"')
        self.url = url
        self.events_regclass = f"{schema}.{events_table}"
        # PostgresApplicationRecorder: channel_name = events table name, NOTIFY on insert.
        self.events_channel = events_table.replace(".", "_")  # PG_EVENTS_CHANNEL by default
        self.owns_conn = conn is None
        self.conn = connect_pg(url) if conn is None else conn

    def reconnect(self) -> None:
        if self.conn.closed or self.conn.broken:
            if self.owns_conn:
                self.conn.close()
            self.conn = connect_pg(self.url)
            self.owns_conn = True

    def abandon_unfinished(self) -> None:
        """Closes the connection unless it is at rest: psycopg leaves it mid-statement, in a
        transaction holding its locks, when Ctrl-C lands between sending a query and reading
        its result; the server ends that transaction once the connection is gone."""
        if not self.conn.closed and self.conn.info.transaction_status != TransactionStatus.IDLE:
            self.conn.close()

    @contextmanager
    def write(self) -> Iterator[psycopg.Cursor[Any]]:
        with self.conn.transaction(), self.conn.cursor() as cur:
            yield cur

    @contextmanager
    def snapshot(self) -> Iterator[psycopg.Cursor[Any]]:
        with self.conn.transaction(force_rollback=True), self.conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield cur

    @contextmanager
    def reading(self) -> Iterator[psycopg.Cursor[Any]]:
        with self.conn.transaction(force_rollback=True), self.conn.cursor() as cur:
            yield cur

    def close(self) -> None:
        if self.owns_conn:
            self.conn.close()

    def table_exists(self, cur: Any, physical: str) -> bool:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{physical}"',))
        return bool(cur.fetchone()[0])

    def _copy(self, cur: Any, table: Table, target: str, rows: Sequence[Row]) -> None:
        """Binary COPY: psycopg formats rows in C, several times faster than array params."""
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        with cur.copy(f"COPY {target} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([_PG_COPY[t] for t in table.types])
            for values in self.encode_rows(table, rows):
                copy.write_row(values)

    def _stage(self, cur: Any, table: Table, physical: str, rows: Sequence[Row]) -> str:
        """COPY rows into a session-local staging table (emptied at commit)."""
        staging = f'"pj_stage_{table.name}"'
        cur.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE "{physical}") ON COMMIT DELETE ROWS'
        )
        cur.execute(f"DELETE FROM {staging}")
        self._copy(cur, table, staging, rows)
        return staging

    def relabel(self, cur: Any, physical: str, column: str, mapping: dict[Any, Any]) -> None:
        cur.execute(
            f'UPDATE "{physical}" AS t SET "{column}" = m.new '
            f'FROM unnest(%b::text[], %b::text[]) AS m(old, new) WHERE t."{column}" = m.old',
            (list(mapping), list(mapping.values())),
        )

    def update(self, cur: Any, table: Table, physical: str, rows: Sequence[Row]) -> None:
        rest = [c for c in table.column_names if c not in table.key]
        if not rest:
            return
        staging = self._stage(cur, table, physical, rows)
        sets = ", ".join(f'"{c}" = s."{c}"' for c in rest)
        where = " AND ".join(f't."{c}" = s."{c}"' for c in table.key)
        cur.execute(f'UPDATE "{physical}" AS t SET {sets} FROM {staging} AS s WHERE {where}')

    def upsert(self, cur: Any, table: Table, physical: str, rows: Sequence[Row]) -> None:
        """Staged rows, then one INSERT … ON CONFLICT."""
        staging = self._stage(cur, table, physical, rows)
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        key = ", ".join(f'"{c}"' for c in table.key)
        rest = [c for c in table.column_names if c not in table.key]
        action = (
            "DO UPDATE SET " + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in rest)
            if rest
            else "DO NOTHING"
        )
        cur.execute(
            f'INSERT INTO "{physical}" ({cols}) SELECT {cols} FROM {staging} '
            f"ON CONFLICT ({key}) {action}"
        )

    def insert(self, cur: Any, table: Table, physical: str, rows: Sequence[Row]) -> None:
        self._copy(cur, table, f'"{physical}"', rows)

    def _select_in_sql(self, table: Table, physical: str, column: str) -> str:
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        kind = dict(table.columns)[column]
        return f'SELECT {cols} FROM "{physical}" WHERE "{column}" = ANY(%b::{_PG_ARRAY[kind]})'

    def _in_param(self, values: Sequence[Any]) -> Any:
        return list(values)

    binary_collation = ' COLLATE "C"'

    def _stream(self, cur: Any, query: str, name: str) -> Generator[tuple[Any, ...], None, None]:
        # A server-side cursor: the comparison never holds a whole table in memory.
        with self.conn.cursor(name=name) as named:
            named.itersize = 2000
            named.execute(query)
            yield from named

    def fetch_events(
        self, cur: Any, after: int, limit: int, topics: Sequence[str], stop: int | None
    ) -> list[RawEvent]:
        bound = "" if stop is None else " AND notification_id <= %(stop)s"
        cur.execute(
            "SELECT notification_id, topic, originator_id::text, originator_version, "
            "CASE WHEN topic = ANY(%(topics)s::text[]) THEN state END "
            f"FROM {self.events_table} WHERE notification_id > %(after)s{bound} "
            "ORDER BY notification_id LIMIT %(limit)s",
            {"topics": list(topics), "after": after, "stop": stop, "limit": limit},
            binary=True,
        )
        return [RawEvent(*row) for row in cur.fetchall()]

    def fetch_rows(self, cur: Any, after: int, limit: int, stop: int | None) -> list[RawEvent]:
        bound = "" if stop is None else " AND notification_id <= %(stop)s"
        cur.execute(
            "SELECT notification_id, topic, originator_id::text, originator_version, state "
            f"FROM {self.events_table} WHERE notification_id > %(after)s{bound} "
            "ORDER BY notification_id LIMIT %(limit)s",
            {"after": after, "stop": stop, "limit": limit},
            binary=True,
        )
        return [RawEvent(*row) for row in cur.fetchall()]

    def fetch_topics(
        self, cur: Any, after: int, last: int, topics: Sequence[str]
    ) -> list[RawEvent]:
        cur.execute(
            "SELECT notification_id, topic, originator_id::text, originator_version, state "
            f"FROM {self.events_table} WHERE notification_id > %s AND notification_id <= %s "
            "AND topic = ANY(%s::text[]) ORDER BY notification_id",
            (after, last, list(topics)),
            binary=True,
        )
        return [RawEvent(*row) for row in cur.fetchall()]

    @contextmanager
    def savepoint(self, cur: Any, *, keep: bool = True) -> Iterator[None]:
        # Nested inside ``write()``'s transaction, psycopg makes this a SAVEPOINT.
        with self.conn.transaction(force_rollback=not keep):
            yield

    def serialise(self, cur: Any, name: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(name.encode()),))

    def set_lock_timeout(self, cur: Any, seconds: int) -> None:
        cur.execute(f"SET LOCAL lock_timeout = '{int(seconds)}s'")

    def unsettled_writers(self, cur: Any) -> int:
        """Other transactions holding a write lock on the events table that began before now.

        A transaction that holds an unseen position below a seen one started before that
        one committed, i.e. before the read that saw it, and keeps its lock on the events
        table until it ends. None such → every position below is committed or never will be.
        """
        cur.execute(
            "SELECT count(*) FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'relation' AND l.relation = to_regclass(%s) AND l.granted "
            "AND l.mode = ANY(%s) AND l.pid IS DISTINCT FROM pg_backend_pid() "
            "AND (a.xact_start IS NULL OR a.xact_start <= clock_timestamp())",
            (self.events_regclass, list(_WRITER_LOCK_MODES)),
        )
        return int(cur.fetchone()[0])

    def notify_progress(self, cur: Any) -> None:
        cur.execute(f"NOTIFY {PROGRESS_CHANNEL}")

    def listener(self, channel: str) -> Listener:
        return PgListener(self.url, channel)

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        key = zlib.crc32(name.encode())
        with connect_pg(self.url) as conn:
            deadline = time.monotonic() + EXCLUSIVE_WAIT_S  # outlast a `running` probe
            while not _first(conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))):
                if time.monotonic() > deadline:
                    raise ProjectionsBusy(f"another process is running {name}")
                time.sleep(0.05)
            yield  # the lock goes with the session, also if this process dies

    def running(self, name: str) -> bool:
        # A one-bigint advisory key shows in pg_locks as classid (high half), objid (low
        # half), objsubid 1; advisory locks belong to one database.
        found = self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = 0 AND objid::bigint = %s AND objsubid = 1)",
            (zlib.crc32(name.encode()),),
        )
        return _first(found)


def _first(cur: Any) -> bool:
    row = cur.fetchone()
    return bool(row and row[0])


@contextmanager
def pooled(url: StorageUrl, timeout_s: float) -> Iterator[PgDb]:
    """A ``PgDb`` on a connection of the process's shared pool (ledger/pg_pool.py), for a
    short read by a process that must stay within ``LEDGER_POOL_SIZE`` (the API): it waits
    at most ``timeout_s`` for the connection (then ``STORAGE_UNAVAILABLE``) and each statement
    is cancelled after ``timeout_s`` (``statement_timeout``); the connection goes back to the
    pool as it came (its row factory and timeout restored)."""
    timeout_ms = max(1, round(timeout_s * 1000))
    with lease_for(url) as pool, pool.connection(timeout_s) as conn:
        shared_rows = conn.row_factory
        conn.row_factory = tuple_row  # type: ignore[assignment]  # our SQL reads tuples; restored below
        try:
            conn.execute(f"SET statement_timeout = {timeout_ms}")
            yield PgDb(url, conn=conn)
        finally:
            conn.row_factory = shared_rows
            with suppress(psycopg.Error):  # a broken connection: the pool discards it
                conn.execute("RESET statement_timeout")


def connect_pg(url: StorageUrl) -> psycopg.Connection[Any]:
    assert url.pg is not None, "a PostgreSQL URL"
    conninfo = make_conninfo(**url.pg.as_dict())
    conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=PG_CONNECT_TIMEOUT_S)
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


class PgListener(Listener):
    def __init__(self, url: StorageUrl, channel: str) -> None:
        self.conn = connect_pg(url)
        self.conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(channel)))

    def drain(self) -> None:
        for _ in range(1000):
            if not list(self.conn.notifies(timeout=0)):
                return

    def wait(self, timeout: float) -> bool:
        return bool(list(self.conn.notifies(timeout=max(0.0, timeout), stop_after=1)))

    def close(self) -> None:
        self.conn.close()
