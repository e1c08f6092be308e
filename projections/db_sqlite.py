"""SQLite: the read models in the ledger's own file (the default, for development).

One writer at a time: a batch takes the write lock first (``BEGIN IMMEDIATE``), so positions
commit in order and a hole in them is final. No NOTIFY: the worker and readers poll.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson

from ledger.files import lock_file_held, lock_file_taken, try_flock
from ledger.library.tables import SQLITE_EVENTS_TABLE, SQLITE_POSITION_COLUMN
from ledger.sqlite_tx import read_transaction, write_transaction
from projections.db import (
    EXCLUSIVE_WAIT_S,
    SQLITE_BUSY_TIMEOUT_S,
    Convert,
    Db,
    Listener,
    ProjectionsBusy,
    Row,
    bool_out,
    from_iso,
    iso,
    json_in,
    json_out,
)
from projections.events import RawEvent, canonical_uuid
from projections.schema import BOOL, INT, JSON, TEXT, TS, Table


class SqliteDb(Db):
    kind = "sqlite"
    id_column = SQLITE_POSITION_COLUMN
    ddl_types = {TEXT: "text", INT: "bigint", BOOL: "integer", TS: "text", JSON: "text"}
    blob_type = "blob"
    to_db: dict[str, Convert | None] = {TEXT: None, INT: None, BOOL: None, TS: iso, JSON: json_in}
    from_db: dict[str, Convert | None] = {
        TEXT: None,
        INT: None,
        BOOL: bool_out,
        TS: from_iso,
        JSON: json_out,
    }

    def __init__(
        self,
        path: Path,
        events_table: str = SQLITE_EVENTS_TABLE,
        poll: float = 0.05,
        *,
        create: bool = True,
        busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S,
    ):
        """Without ``create`` a missing file is an error (``sqlite3.OperationalError``), never
        made: a probe of a ledger whose file went away must not leave an empty one there."""
        super().__init__(events_table)
        self.path = path
        self.poll = poll
        target, as_uri = (
            (str(path), False) if create else (f"{path.resolve().as_uri()}?mode=rw", True)
        )
        self.conn = sqlite3.connect(
            target,
            uri=as_uri,
            isolation_level=None,
            timeout=busy_timeout_s,
            check_same_thread=False,
        )
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives a killed process; a power cut may lose the last batches,
            # but always together with their tracking record, so nothing is applied twice or
            # skipped.
            self.conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            self.conn.close()
            raise

    def sql(self, text: str) -> str:
        return text.replace("%s", "?")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
        with write_transaction(self.conn), contextlib.closing(self.conn.cursor()) as cur:
            yield cur

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Cursor]:
        with read_transaction(self.conn), contextlib.closing(self.conn.cursor()) as cur:
            yield cur

    def reading(self) -> contextlib.AbstractContextManager[sqlite3.Cursor]:
        return self.snapshot()

    def close(self) -> None:
        self.conn.close()

    def abandon_unfinished(self) -> None:
        """A transaction an interrupt left open is rolled back (a write one would keep
        the write lock from the connection that cleans up)."""
        if self.conn.in_transaction:
            self.conn.rollback()

    def table_exists(self, cur: Any, physical: str) -> bool:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (physical,))
        return cur.fetchone() is not None

    def upsert(self, cur: Any, table: Table, physical: str, rows: Sequence[Row]) -> None:
        names = table.column_names
        cols = ", ".join(f'"{c}"' for c in names)
        marks = ", ".join("?" for _ in names)
        key = ", ".join(f'"{c}"' for c in table.key)
        rest = [c for c in names if c not in table.key]
        action = (
            "DO UPDATE SET " + ", ".join(f'"{c}" = excluded."{c}"' for c in rest)
            if rest
            else "DO NOTHING"
        )
        cur.executemany(
            f'INSERT INTO "{physical}" ({cols}) VALUES ({marks}) ON CONFLICT ({key}) {action}',
            self.encode_rows(table, rows),
        )

    def insert(self, cur: Any, table: Table, physical: str, rows: Sequence[Row]) -> None:
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        marks = ", ".join("?" for _ in table.column_names)
        cur.executemany(
            f'INSERT INTO "{physical}" ({cols}) VALUES ({marks})', self.encode_rows(table, rows)
        )

    def relabel(self, cur: Any, physical: str, column: str, mapping: dict[Any, Any]) -> None:
        cur.executemany(
            f'UPDATE "{physical}" SET "{column}" = ? WHERE "{column}" = ?',
            [(new, old) for old, new in mapping.items()],
        )

    def update(self, cur: Any, table: Table, physical: str, rows: Sequence[Row]) -> None:
        names = table.column_names
        rest = [i for i, c in enumerate(names) if c not in table.key]
        keys = [names.index(c) for c in table.key]
        if not rest:
            return
        sets = ", ".join(f'"{names[i]}" = ?' for i in rest)
        where = " AND ".join(f'"{names[i]}" = ?' for i in keys)
        cur.executemany(
            f'UPDATE "{physical}" SET {sets} WHERE {where}',
            [
                tuple(v[i] for i in rest) + tuple(v[i] for i in keys)
                for v in self.encode_rows(table, rows)
            ],
        )

    def _select_in_sql(self, table: Table, physical: str, column: str) -> str:
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        return (
            f'SELECT {cols} FROM "{physical}" WHERE "{column}" IN (SELECT value FROM json_each(?))'
        )

    def _in_param(self, values: Sequence[Any]) -> Any:
        return orjson.dumps(list(values)).decode()

    def _stream(self, cur: Any, query: str, name: str) -> Generator[tuple[Any, ...], None, None]:
        with contextlib.closing(self.conn.cursor()) as reader:
            yield from reader.execute(query)

    def fetch_events(
        self, cur: Any, after: int, limit: int, topics: Sequence[str], stop: int | None
    ) -> list[RawEvent]:
        bound = "" if stop is None else f" AND rowid <= {int(stop)}"
        cur.execute(
            "SELECT rowid, topic, originator_id, originator_version, "
            "CASE WHEN topic IN (SELECT value FROM json_each(?)) THEN state END "
            f"FROM {self.events_table} WHERE rowid > ?{bound} ORDER BY rowid LIMIT ?",
            (orjson.dumps(list(topics)).decode(), after, limit),
        )
        return [RawEvent(p, t, canonical_uuid(o), v, s) for p, t, o, v, s in cur.fetchall()]

    def fetch_rows(self, cur: Any, after: int, limit: int, stop: int | None) -> list[RawEvent]:
        bound = "" if stop is None else f" AND rowid <= {int(stop)}"
        cur.execute(
            "SELECT rowid, topic, originator_id, originator_version, state "
            f"FROM {self.events_table} WHERE rowid > ?{bound} ORDER BY rowid LIMIT ?",
            (after, limit),
        )
        return [RawEvent(p, t, canonical_uuid(o), v, s) for p, t, o, v, s in cur.fetchall()]

    def fetch_topics(
        self, cur: Any, after: int, last: int, topics: Sequence[str]
    ) -> list[RawEvent]:
        cur.execute(
            "SELECT rowid, topic, originator_id, originator_version, state "
            f"FROM {self.events_table} WHERE rowid > ? AND rowid <= ? "
            "AND topic IN (SELECT value FROM json_each(?)) ORDER BY rowid",
            (after, last, orjson.dumps(list(topics)).decode()),
        )
        return [RawEvent(p, t, canonical_uuid(o), v, s) for p, t, o, v, s in cur.fetchall()]

    def listener(self, channel: str) -> Listener:
        return PollListener(self.poll)

    @contextmanager
    def savepoint(self, cur: Any, *, keep: bool = True) -> Iterator[None]:
        cur.execute("SAVEPOINT pj_try")
        try:
            yield
        except BaseException:
            cur.execute("ROLLBACK TO pj_try")
            cur.execute("RELEASE pj_try")
            raise
        if not keep:
            cur.execute("ROLLBACK TO pj_try")
        cur.execute("RELEASE pj_try")

    # One writer at a time, no NOTIFY, no WAL-less tables: these have nothing to do here.
    def reconnect(self) -> None:
        return None

    def serialise(self, cur: Any, name: str) -> None:
        return None

    def set_lock_timeout(self, cur: Any, seconds: int) -> None:
        return None

    def notify_progress(self, cur: Any) -> None:
        return None

    def _lock_path(self, name: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{name}.lock")

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """On a lock file beside the database, there only while held (``lock_file_held``)."""
        deadline = time.monotonic() + EXCLUSIVE_WAIT_S  # outlast a `running` probe

        def take(handle: IO[bytes]) -> None:
            while not try_flock(handle, fcntl.LOCK_EX):
                if time.monotonic() > deadline:
                    raise ProjectionsBusy(f"another process is running {name} on {self.path}")
                time.sleep(0.05)

        with lock_file_held(self._lock_path(name), take):
            yield

    def running(self, name: str) -> bool:
        return lock_file_taken(self._lock_path(name))


class PollListener(Listener):
    def __init__(self, interval: float) -> None:
        self.interval = interval

    def drain(self) -> None:
        pass

    def wait(self, timeout: float) -> bool:
        time.sleep(max(0.0, min(self.interval, timeout)))
        return True  # polling: always worth a look
