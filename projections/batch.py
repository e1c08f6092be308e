"""One batch's working set: rows read once, changed in memory by the handlers, written once.

Handlers never talk to the database. They ``get``/``edit`` rows (fetched for the whole batch
up front, by the stream ids of its events, or on a miss), ``put`` new or changed rows, ``add``
rows to append-only tables and ``delete``; ``flush`` then writes each table with one
statement (an ``unnest`` upsert on PostgreSQL, ``executemany`` on SQLite). A batch is applied
event by event in log order, so its result is the same however the log is cut into batches.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from projections.db import Db, Row
from projections.schema import Table

CACHE_VALUES_PER_TABLE = 20_000
SEEN_BITS_LOG2 = 23  # 1 MiB per table: under 3% false positives up to a million values


class Seen:
    """A Bloom filter: which values may have rows. Fixed size, so memory does not grow with
    the log; "no" is certain, "maybe" means ask the table."""

    def __init__(self, bits_log2: int = SEEN_BITS_LOG2) -> None:
        self.shift = bits_log2
        self.mask = (1 << bits_log2) - 1
        self.bits = bytearray((1 << bits_log2) // 8)

    def add(self, value: Any) -> None:
        # Three places from the three slices of one 64-bit hash.
        h, shift, mask, bits = hash(value), self.shift, self.mask, self.bits
        for place in (h & mask, (h >> shift) & mask, (h >> 2 * shift) & mask):
            bits[place >> 3] |= 1 << (place & 7)

    def __contains__(self, value: Any) -> bool:
        h, shift, mask, bits = hash(value), self.shift, self.mask, self.bits
        for place in (h & mask, (h >> shift) & mask, (h >> 2 * shift) & mask):
            if not bits[place >> 3] & (1 << (place & 7)):
                return False
        return True


class RowCache:
    """Rows kept between batches by a process that alone writes a table copy (a rebuild, a
    check): for each table, the rows of the most recently used first-key values, at most
    ``limit`` values, so memory stays bounded however long the log. The cached rows are the
    batch's own row objects; a batch that fails must ``clear`` the cache."""

    def __init__(self, limit: int = CACHE_VALUES_PER_TABLE, ceiling: int | None = None) -> None:
        self.limit = limit
        # No table keeps more values than this, whatever its own cap (None: no ceiling).
        self.ceiling = ceiling
        self.tables: dict[str, OrderedDict[Any, list[Row]]] = defaultdict(OrderedDict)
        # Tables that started empty: every value that ever had rows is in ``seen``, so a
        # value that is not has none (no query needed).
        self.seen: dict[str, Seen] = {}
        # Tables with a ``cache_index``: its column, indexed value -> first-key values, and
        # first-key value -> the indexed values its rows hold.
        self.indexed: dict[str, str] = {}
        self.index: dict[str, dict[Any, set[Any]]] = defaultdict(dict)
        self.placed: dict[str, dict[Any, set[Any]]] = defaultdict(dict)

    def starts_empty(self, tables: Iterable[str]) -> None:
        for table in tables:
            self.seen[table] = Seen()

    def surely_absent(self, table: str, value: Any) -> bool:
        seen = self.seen.get(table)
        return seen is not None and value not in seen

    def take(self, table: str, value: Any) -> list[Row] | None:
        entries = self.tables[table]
        rows = entries.get(value)
        if rows is not None:
            entries.move_to_end(value)
        return rows

    def keep(
        self,
        table: str,
        groups: dict[Any, list[Row]],
        column: str | None,
        limit: int | None = None,
    ) -> None:
        """Keep ``groups`` (first-key value -> rows), evicting the least recently used
        values beyond ``limit`` (default: the cache's own)."""
        entries = self.tables[table]
        seen = self.seen.get(table)
        if column is not None:
            self.indexed[table] = column
        for value, rows in groups.items():
            entries[value] = rows
            entries.move_to_end(value)
            if seen is not None and rows:
                seen.add(value)
            if column is not None:
                self._place(table, value, {row[column] for row in rows})
        cap = self.limit if limit is None else limit
        cap = cap if self.ceiling is None else min(cap, self.ceiling)
        while len(entries) > cap:
            value, _ = entries.popitem(last=False)
            self._place(table, value, set())

    def _place(self, table: str, value: Any, now: set[Any]) -> None:
        index, placed = self.index[table], self.placed[table]
        for old in placed.pop(value, ()):
            members = index.get(old)
            if members is not None:
                members.discard(value)
        if now:
            placed[value] = now
            for indexed in now:
                index.setdefault(indexed, set()).add(value)

    def relabel(self, table: str, old: Any, new: Any) -> None:
        """Every cached row of ``table`` whose indexed column is ``old`` now has ``new``."""
        column = self.indexed.get(table)
        if column is None:
            return
        entries, placed = self.tables[table], self.placed[table]
        moved = self.index[table].pop(old, set())
        for value in moved:
            for row in entries.get(value, ()):
                if row[column] == old:
                    row[column] = new
            held = placed.setdefault(value, set())
            held.discard(old)
            held.add(new)
        self.index[table].setdefault(new, set()).update(moved)

    def clear(self) -> None:
        self.tables.clear()
        self.index.clear()
        self.placed.clear()
        self.seen.clear()  # after a failed batch nothing is certain any more


class TableBuffer:
    __slots__ = (
        "table",
        "physical",
        "rows",
        "dirty",
        "deleted",
        "added",
        "loaded",
        "stored",
        "fresh",
    )

    def __init__(self, table: Table, physical: str) -> None:
        self.table = table
        self.physical = physical
        self.rows: dict[Any, Row] = {}
        self.dirty: dict[Any, None] = {}
        self.deleted: dict[Any, None] = {}  # keys to delete from the table
        self.added: list[Row] = []
        self.loaded: set[Any] = set()  # first-key values whose rows were all read
        self.stored: set[Any] = set()  # keys of rows that are in the table now
        # First-key values whose set of row objects the row cache does not have yet.
        self.fresh: set[Any] = set()

    def first(self, key: Any) -> Any:
        return key[0] if type(key) is tuple else key

    def split_dirty(self) -> tuple[list[Row], list[Row], list[Row]]:
        """Changed rows as (in the table: update, surely absent: insert, unknown: upsert)."""
        update, insert, upsert = [], [], []
        for key in self.dirty:
            row = self.rows[key]
            if key in self.stored:
                update.append(row)
            elif self.first(key) in self.loaded:
                insert.append(row)
            else:
                upsert.append(row)
        return update, insert, upsert


def _resolved(mapping: dict[Any, Any]) -> dict[Any, Any]:
    """old -> final value, following chains (a -> b, b -> c gives a -> c, b -> c)."""
    out = {}
    for old in mapping:
        new = mapping[old]
        while new in mapping:
            new = mapping[new]
        out[old] = new
    return out


class Batch:
    def __init__(
        self,
        db: Db,
        cur: Any,
        tables: Sequence[Table],
        suffix: str,
        cache: RowCache | None = None,
    ) -> None:
        self.db = db
        self.cur = cur
        self.cache = cache
        self.buffers = {t.name: TableBuffer(t, t.physical(suffix)) for t in tables}
        self.relabels: dict[str, dict[Any, Any]] = {}
        # Per-batch state a projection keeps between its handlers (e.g. merged groups).
        self.scratch: dict[str, Any] = {}

    def physical(self, name: str) -> str:
        return self.buffers[name].physical

    def prefetch(self, name: str, values: Iterable[Any]) -> None:
        """Load every row whose first key column is one of ``values`` (once per value)."""
        buf = self.buffers[name]
        table = buf.table
        assert table.load_by is not None, f"{name} is append-only"
        wanted = [v for v in set(values) if v not in buf.loaded and v is not None]
        if self.cache is not None:
            wanted = self._from_cache(buf, wanted)
        if not wanted:
            return
        for row in self.db.select_in(self.cur, table, buf.physical, table.load_by, wanted):
            key = table.key_of(row)
            buf.stored.add(key)
            buf.rows.setdefault(key, row)
        buf.loaded.update(wanted)
        buf.fresh.update(wanted)

    def prefetch_where(self, name: str, column: str, values: Iterable[Any]) -> list[Any]:
        """Load every row whose ``column`` held one of ``values`` when this batch began (the
        table as flushed; rows this batch changed are the caller's to look at), through
        ``prefetch``, so the row cache stays the one copy; their first-key values. For rare
        steps (an erasure regrouping a component): it reads the table, never the cache."""
        buf = self.buffers[name]
        table = buf.table
        assert table.load_by is not None, f"{name} is append-only"
        wanted = sorted(set(values))
        if not wanted:
            return []
        rows = self.db.select_in(self.cur, table, buf.physical, column, wanted)
        firsts = sorted({row[table.load_by] for row in rows})
        self.prefetch(name, firsts)
        return firsts

    def edit_indexed(self, name: str, key: Any) -> Row | None:
        """``edit`` for a row whose ``cache_index`` column the caller will change outside
        ``relabel`` (a group split): the row cache re-indexes it after the flush."""
        row = self.edit(name, key)
        if row is not None:
            buf = self.buffers[name]
            buf.fresh.add(buf.first(key))
        return row

    def _from_cache(self, buf: TableBuffer, wanted: list[Any]) -> list[Any]:
        assert self.cache is not None
        missing = []
        table = buf.table
        single = len(table.key) == 1
        take, absent = self.cache.take, self.cache.surely_absent
        for value in wanted:
            rows = take(table.name, value)
            if rows is None and not absent(table.name, value):
                missing.append(value)
                continue
            for row in rows or ():
                key = value if single else table.key_of(row)
                buf.stored.add(key)
                buf.rows.setdefault(key, row)
            buf.loaded.add(value)
        return missing

    def _keep(self) -> None:
        """After a flush: values read from the table, or whose rows came or went, go to the
        cache (the others are there already, as the very row objects this batch changed)."""
        assert self.cache is not None
        for buf in self.buffers.values():
            fresh = buf.fresh & buf.loaded
            if not fresh:
                continue
            groups: dict[Any, list[Row]]
            if len(buf.table.key) == 1:
                groups = {v: [buf.rows[v]] if v in buf.rows else [] for v in fresh}
            else:
                groups = {value: [] for value in fresh}
                for key, row in buf.rows.items():
                    rows = groups.get(key[0])
                    if rows is not None:
                        rows.append(row)
            table = buf.table
            self.cache.keep(table.name, groups, table.cache_index, table.cache_values)

    def get(self, name: str, key: Any) -> Row | None:
        buf = self.buffers[name]
        row = buf.rows.get(key)
        if row is not None:
            return row
        first = buf.first(key)
        if first in buf.loaded:
            return None
        self.prefetch(name, (first,))
        return buf.rows.get(key)

    def edit(self, name: str, key: Any) -> Row | None:
        """``get`` for a row the handler is about to change: it will be written back."""
        row = self.get(name, key)
        if row is not None:
            self.buffers[name].dirty[key] = None
        return row

    def rows(self, name: str) -> Iterable[Row]:
        """The rows this batch holds for ``name`` (loaded or new)."""
        return self.buffers[name].rows.values()

    def put(self, name: str, row: Row) -> None:
        buf = self.buffers[name]
        key = buf.table.key_of(row)
        first = buf.first(key)
        if first not in buf.loaded:
            self.prefetch(name, (first,))  # whether it is an insert or an update
        if buf.rows.get(key) is not row:
            buf.fresh.add(first)
        buf.rows[key] = row
        buf.dirty[key] = None

    def add(self, name: str, row: Row) -> None:
        """A row for an append-only table."""
        self.buffers[name].added.append(row)

    def delete(self, name: str, key: Any) -> None:
        buf = self.buffers[name]
        if self.get(name, key) is None:
            return
        buf.rows.pop(key, None)
        buf.dirty.pop(key, None)
        buf.fresh.add(buf.first(key))
        if key in buf.stored:
            buf.stored.discard(key)
            buf.deleted[key] = None

    def relabel(self, name: str, old: Any, new: Any) -> None:
        """Every row of ``name`` whose ``cache_index`` column is ``old`` gets ``new``: cached
        rows now, the table's at flush (before this batch's rows are written). Rows this
        batch holds are the projection's to bring up to date before the flush."""
        assert self.buffers[name].table.cache_index is not None, f"{name}: no cache_index"
        if self.cache is not None:
            self.cache.relabel(name, old, new)
        self.relabels.setdefault(name, {})[old] = new

    def flush(self) -> int:
        """Write everything; returns the number of rows written."""
        written = 0
        for name, mapping in self.relabels.items():
            buf = self.buffers[name]
            column = buf.table.cache_index
            assert column is not None
            self.db.relabel(self.cur, buf.physical, column, _resolved(mapping))
        for buf in self.buffers.values():
            if buf.deleted:
                self.db.delete(self.cur, buf.table, buf.physical, list(buf.deleted))
            update, insert, upsert = buf.split_dirty()
            if update:
                self.db.update(self.cur, buf.table, buf.physical, update)
            if insert:
                self.db.insert(self.cur, buf.table, buf.physical, insert)
            if upsert:
                self.db.upsert(self.cur, buf.table, buf.physical, upsert)
            written += len(buf.dirty)
            if buf.added:
                self.db.insert(self.cur, buf.table, buf.physical, buf.added)
                written += len(buf.added)
        if self.cache is not None:
            self._keep()
        return written
