"""The two backends the read models live on, behind one small interface (``Db``; the
implementations are ``db_sqlite.SqliteDb`` and ``db_postgres.PgDb``).

Read models live in the ledger's own database (same SQLite file, same PostgreSQL database), so
the tracking record, the view rows and the read of the log can share one transaction.

- ``write()``: a transaction that may write. PostgreSQL: READ COMMITTED (each statement sees
  what committed before it). SQLite: ``BEGIN IMMEDIATE``, so the write lock is taken first and
  a batch never fails half-way on a stale read snapshot.
- ``snapshot()``: a read-only transaction that sees one moment (REPEATABLE READ; on SQLite a
  WAL read transaction), used by the check to compare a live table with its rebuild.

SQL is written once with ``%s`` placeholders; ``sql()`` turns them into ``?`` for SQLite.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson

from ledger.domain import codes
from ledger.domain.errors import LedgerError
from projections.events import RawEvent
from projections.schema import TEXT, TS, Table

Row = dict[str, Any]
Convert = Callable[[Any], Any]

SQLITE_BUSY_TIMEOUT_S = 30.0
SWAP_LOCK_TIMEOUT_S = 10
EXCLUSIVE_WAIT_S = 1.0
SQLITE_IN_CHUNK = 5000
META_TABLE = "pj_meta"
# Projections stopped on an event they cannot apply, and events left out by an operator
# (``projections.poison``).
HALTS_TABLE = "pj_halts"
SKIPS_TABLE = "pj_skips"
# The results of ``ledger projections check`` (``projections.check_results``).
CHECKS_TABLE = "pj_checks"
PROGRESS_CHANNEL = "pj_progress"


class ProjectionsBusy(LedgerError):
    """Another process holds the lock a rebuild or check needs."""

    catalogued = codes.PROJECTIONS_BUSY


def dump_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def json_in(value: Any) -> Any:
    return None if value is None else dump_json(value)


def json_out(value: str | None) -> Any:
    return None if value is None else orjson.loads(value)


def bool_out(value: int | None) -> bool | None:
    return None if value is None else bool(value)


class Db(ABC):
    """One connection to the ledger's database, for the projections."""

    kind: str
    id_column: str = "rowid"
    ddl_types: dict[str, str]
    to_db: dict[str, Convert | None]
    blob_type: str  # bytes (the Merkle log's tiles: replay/tiles.py)
    from_db: dict[str, Convert | None]

    def __init__(self, events_table: str) -> None:
        self.events_table = events_table
        self.events_channel = ""  # what the ledger's writer NOTIFYs (PostgreSQL)

    @abstractmethod
    def reconnect(self) -> None:
        """After a failed batch: a fresh connection if the old one is broken."""

    @abstractmethod
    def abandon_unfinished(self) -> None:
        """After an interrupt, before another connection touches the same tables: end
        whatever transaction or statement the interrupt left open on this connection, so
        its locks cannot make the other wait for ever (``reconnect`` then gives a fresh
        connection where one was closed)."""

    # -- transactions ----------------------------------------------------------------------
    @abstractmethod
    def write(self) -> contextlib.AbstractContextManager[Any]: ...

    @abstractmethod
    def snapshot(self) -> contextlib.AbstractContextManager[Any]: ...

    @abstractmethod
    def reading(self) -> contextlib.AbstractContextManager[Any]:
        """A transaction that only reads, each statement seeing the latest commits
        (PostgreSQL READ COMMITTED; SQLite has a single writer, so a read snapshot)."""

    @abstractmethod
    def close(self) -> None: ...

    def sql(self, text: str) -> str:
        return text

    @abstractmethod
    def savepoint(self, cur: Any, *, keep: bool = True) -> contextlib.AbstractContextManager[None]:
        """A nested transaction: an exception inside rolls back only what it wrote (and
        re-raises); ``keep=False`` rolls it back in any case (a trial)."""

    @abstractmethod
    def serialise(self, cur: Any, name: str) -> None:
        """Make concurrent transactions that call this with ``name`` run one at a time
        (SQLite: ``BEGIN IMMEDIATE`` already does)."""

    @abstractmethod
    def set_lock_timeout(self, cur: Any, seconds: int) -> None:
        """Fail rather than queue for long behind readers (PostgreSQL)."""

    # -- conversions -----------------------------------------------------------------------
    def encoders(self, table: Table) -> list[Convert | None]:
        return [self.to_db[t] for t in table.types]

    def decoders(self, table: Table) -> list[Convert | None]:
        return [self.from_db[t] for t in table.types]

    def encode_rows(self, table: Table, rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        """Rows as value tuples in column order, in the backend's types."""
        names = table.column_names
        pick = itemgetter(*names)
        converts = [(i, enc) for i, enc in enumerate(self.encoders(table)) if enc is not None]
        if len(names) == 1:
            return (
                [(pick(row),) for row in rows]
                if not converts
                else [(converts[0][1](pick(row)),) for row in rows]
            )
        if not converts:
            return [pick(row) for row in rows]
        out = []
        for row in rows:
            values = list(pick(row))
            for index, convert in converts:
                values[index] = convert(values[index])
            out.append(tuple(values))
        return out

    def ts(self, value: datetime | None) -> Any:
        """A moment as this backend stores it, for hand-written statements."""
        convert = self.to_db[TS]
        return value if convert is None else convert(value)

    def ts_from(self, value: Any) -> datetime | None:
        """A stored moment back as a datetime."""
        convert = self.from_db[TS]
        moment: datetime | None = value if convert is None else convert(value)
        return moment

    def decode_row(self, table: Table, values: Sequence[Any]) -> Row:
        return {
            n: v if dec is None else dec(v)
            for n, dec, v in zip(table.column_names, self.decoders(table), values, strict=True)
        }

    # -- DDL -------------------------------------------------------------------------------
    def create_table(self, cur: Any, table: Table, physical: str, gen: str) -> None:
        cols = ", ".join(f'"{n}" {self.ddl_types[t]}' for n, t in table.columns)
        key = ", ".join(f'"{c}"' for c in table.key)
        cur.execute(
            f'CREATE TABLE IF NOT EXISTS "{physical}" ({cols}, '
            f'CONSTRAINT "{table.physical("")}_pk_{gen}" PRIMARY KEY ({key}))'
        )

    def create_indexes(self, cur: Any, table: Table, physical: str, gen: str) -> None:
        base = table.physical("")
        for i, cols in enumerate(table.unique, 1):
            names = ", ".join(f'"{c}"' for c in cols)
            cur.execute(
                f'CREATE UNIQUE INDEX IF NOT EXISTS "{base}_u{i}_{gen}" ON "{physical}" ({names})'
            )
        for i, cols in enumerate(table.indexes, 1):
            names = ", ".join(f'"{c}"' for c in cols)
            cur.execute(f'CREATE INDEX IF NOT EXISTS "{base}_i{i}_{gen}" ON "{physical}" ({names})')

    def drop_table(self, cur: Any, physical: str) -> None:
        cur.execute(f'DROP TABLE IF EXISTS "{physical}"')

    def rename_table(self, cur: Any, old: str, new: str) -> None:
        cur.execute(f'ALTER TABLE "{old}" RENAME TO "{new}"')

    @abstractmethod
    def table_exists(self, cur: Any, physical: str) -> bool: ...

    def create_meta(self, cur: Any) -> None:
        # Two transactions creating one table at once clash in PostgreSQL's catalogue
        # (IF NOT EXISTS does not cover the race): one at a time.
        self.serialise(cur, "create_meta")
        ts = self.ddl_types[TS]
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {META_TABLE} (projection text PRIMARY KEY, "
            f"version bigint NOT NULL, generation text NOT NULL, rebuilt_at {ts}, "
            f"last_batch_at {ts})"
        )
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {HALTS_TABLE} (target text PRIMARY KEY, "
            f"position bigint NOT NULL, topic text NOT NULL, reason text NOT NULL, "
            f"since {ts} NOT NULL, attempts bigint NOT NULL)"
        )
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {SKIPS_TABLE} (projection text NOT NULL, "
            f"version bigint NOT NULL, position bigint NOT NULL, topic text NOT NULL, "
            f"reason text NOT NULL, skipped_at {ts} NOT NULL, "
            "PRIMARY KEY (projection, version, position))"
        )
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {CHECKS_TABLE} (check_id text NOT NULL, "
            f"projection text NOT NULL, checked_at {ts} NOT NULL, position bigint NOT NULL, "
            "differences bigint NOT NULL, differing_tables text NOT NULL, "
            "stopped_position bigint, stopped_reason text, PRIMARY KEY (check_id, projection))"
        )

    # -- rows ------------------------------------------------------------------------------
    def select_in(
        self, cur: Any, table: Table, physical: str, column: str, values: Sequence[Any]
    ) -> list[Row]:
        """Rows whose ``column`` is one of ``values``."""
        out: list[Row] = []
        for chunk in self._chunks(values):
            cur.execute(self._select_in_sql(table, physical, column), (self._in_param(chunk),))
            out += [self.decode_row(table, r) for r in cur.fetchall()]
        return out

    def iter_rows(
        self, cur: Any, table: Table, physical: str, name: str
    ) -> Generator[tuple[Any, ...], None, None]:
        """Every row in key order, raw as stored (for row-by-row comparison). Text keys
        sort by code point, as Python compares them. The generator holds a cursor of this
        connection: close it (``contextlib.closing``) before the connection, also when the
        reading is interrupted, or the garbage collector closes the cursor later, on a closed
        connection ("Exception ignored in: <generator …>")."""
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        kinds = dict(table.columns)
        order = ", ".join(
            f'"{c}"{self.binary_collation if kinds[c] == TEXT else ""}' for c in table.key
        )
        yield from self._stream(cur, f'SELECT {cols} FROM "{physical}" ORDER BY {order}', name)

    def delete(self, cur: Any, table: Table, physical: str, keys: Sequence[Any]) -> None:
        where = " AND ".join(f'"{c}" = %s' for c in table.key)
        params = [k if len(table.key) > 1 else (k,) for k in keys]
        cur.executemany(self.sql(f'DELETE FROM "{physical}" WHERE {where}'), params)

    @abstractmethod
    def upsert(self, cur: Any, table: Table, physical: str, rows: Sequence[Row]) -> None: ...

    @abstractmethod
    def insert(self, cur: Any, table: Table, physical: str, rows: Sequence[Row]) -> None: ...

    @abstractmethod
    def relabel(self, cur: Any, physical: str, column: str, mapping: dict[Any, Any]) -> None:
        """Set ``column`` to ``mapping[value]`` wherever it holds a key of ``mapping``."""

    @abstractmethod
    def update(self, cur: Any, table: Table, physical: str, rows: Sequence[Row]) -> None:
        """Rewrite rows known to be in the table (by key)."""

    @abstractmethod
    def _select_in_sql(self, table: Table, physical: str, column: str) -> str: ...

    @abstractmethod
    def _in_param(self, values: Sequence[Any]) -> Any: ...

    def _chunks(self, values: Sequence[Any]) -> Iterator[Sequence[Any]]:
        values = list(values)
        for start in range(0, len(values), SQLITE_IN_CHUNK):
            yield values[start : start + SQLITE_IN_CHUNK]

    binary_collation = ""

    @abstractmethod
    def _stream(self, cur: Any, query: str, name: str) -> Generator[tuple[Any, ...], None, None]:
        """The rows of ``query`` through a cursor of its own (named ``name`` where the
        database has server-side cursors), closed when the generator is."""

    # -- the log ---------------------------------------------------------------------------
    @abstractmethod
    def fetch_events(
        self, cur: Any, after: int, limit: int, topics: Sequence[str], stop: int | None
    ) -> list[RawEvent]: ...

    @abstractmethod
    def fetch_rows(self, cur: Any, after: int, limit: int, stop: int | None) -> list[RawEvent]:
        """The next ``limit`` rows after ``after`` (up to ``stop``), every topic with its state
        as stored: what the Merkle log hashes (replay/leaves.py)."""

    @abstractmethod
    def fetch_topics(
        self, cur: Any, after: int, last: int, topics: Sequence[str]
    ) -> list[RawEvent]:
        """The events in (``after``, ``last``] with one of ``topics``, with their states."""

    def window(self, cur: Any, after: int, limit: int, stop: int | None) -> tuple[int, int]:
        """How many rows the next ``limit`` rows after ``after`` (up to ``stop``) are, and the
        position of the last: a window without holes has ``after + count == last``."""
        bound = "" if stop is None else f" AND {self.id_column} <= {int(stop)}"
        cur.execute(
            self.sql(
                f"SELECT count(*), max(p) FROM (SELECT {self.id_column} AS p "
                f"FROM {self.events_table} WHERE {self.id_column} > %s{bound} "
                f"ORDER BY {self.id_column} LIMIT %s) AS w"
            ),
            (after, limit),
        )
        count, last = cur.fetchone()
        return int(count), int(last or after)

    def head(self, cur: Any) -> int:
        cur.execute(f"SELECT max({self.id_column}) FROM {self.events_table}")
        found = cur.fetchone()
        return int(found[0] or 0)

    def count_after(self, cur: Any, position: int) -> int:
        cur.execute(
            self.sql(f"SELECT count(*) FROM {self.events_table} WHERE {self.id_column} > %s"),
            (position,),
        )
        return int(cur.fetchone()[0])

    def state_at(self, cur: Any, position: int) -> tuple[str, bytes] | None:
        cur.execute(
            self.sql(f"SELECT topic, state FROM {self.events_table} WHERE {self.id_column} = %s"),
            (position,),
        )
        found = cur.fetchone()
        return None if found is None else (found[0], bytes(found[1]))

    def first_position(self, cur: Any) -> int:
        cur.execute(f"SELECT min({self.id_column}) FROM {self.events_table}")
        return int(cur.fetchone()[0] or 0)

    def unsettled_writers(self, cur: Any) -> int:
        """Transactions that may still commit events below the highest one read (none on
        SQLite: one writer at a time, and a row id is given out only inside it)."""
        return 0

    # -- waking up -------------------------------------------------------------------------
    @abstractmethod
    def notify_progress(self, cur: Any) -> None:
        """Tell read-your-writes waiters that positions moved (PostgreSQL only)."""

    @abstractmethod
    def listener(self, channel: str) -> Listener: ...

    @abstractmethod
    def exclusive(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Held by one process at a time for the block (``ProjectionsBusy`` if another holds
        it), and released when the process dies, however it dies."""

    @abstractmethod
    def running(self, name: str) -> bool:
        """Whether some process holds ``exclusive(name)`` now."""


class Listener(ABC):
    """Wakes a waiting worker or reader: NOTIFY on PostgreSQL, a short poll on SQLite."""

    @abstractmethod
    def drain(self) -> None: ...

    @abstractmethod
    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when there may be something new."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        pass
