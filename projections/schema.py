"""Read-model tables as data: one definition gives the DDL on SQLite and PostgreSQL.

Column types are logical: ``text``, ``int`` (64-bit), ``bool``, ``ts`` (a UTC instant:
``timestamptz`` on PostgreSQL, ISO-8601 text with microseconds on SQLite, so text order is
time order) and ``json`` (canonical JSON text, keys sorted, so equal values compare equal).

A table exists in up to three physical copies: the live one (``pj_<name>``), a rebuild's
(``pj_<name>__b``) and a check's scratch copy (``pj_<name>__c``). Constraint and index names
carry a generation token, so a rebuilt table renamed over the live one never collides with
the names the next rebuild creates.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT, INT, BOOL, TS, JSON = "text", "int", "bool", "ts", "json"
TYPES = (TEXT, INT, BOOL, TS, JSON)

LIVE, BUILD, CHECK = "", "__b", "__c"
SUFFIXES = (LIVE, BUILD, CHECK)
TABLE_PREFIX = "pj_"


@dataclass(frozen=True)
class Table:
    """One read-model table.

    ``load_by`` names the first key column when rows are fetched per batch by that column's
    values (the stream id of the events in the batch, or the key itself); tables without it
    are append-only logs keyed by the event's position.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    load_by: str | None = None
    # A column whose value many rows share and that changes for all of them at once
    # (``Batch.relabel``): the row cache indexes it so it can follow.
    cache_index: str | None = None
    # Build its indexes with the table, even in a rebuild (which otherwise adds them last).
    index_early: bool = False
    # First-key values whose rows a rebuild keeps in memory between batches (None: the row
    # cache's default). Worth raising for small rows whose keys recur all through the log.
    cache_values: int | None = None

    def __post_init__(self) -> None:
        names = [c for c, _ in self.columns]
        assert len(set(names)) == len(names), f"{self.name}: a column repeats"
        assert all(t in TYPES for _, t in self.columns), f"{self.name}: unknown type"
        for cols in (self.key, *self.indexes, *self.unique):
            assert set(cols) <= set(names), f"{self.name}: {cols} not all columns"
        assert self.load_by is None or self.load_by == self.key[0], (
            f"{self.name}: load_by must be the first key column"
        )

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.columns)

    def physical(self, suffix: str) -> str:
        assert suffix in SUFFIXES, suffix
        return f"{TABLE_PREFIX}{self.name}{suffix}"

    def key_of(self, row: dict[str, object]) -> object:
        """The row's key: the value itself for a one-column key, else a tuple."""
        if len(self.key) == 1:
            return row[self.key[0]]
        return tuple(row[c] for c in self.key)


def columns(spec: str) -> tuple[tuple[str, str], ...]:
    """``"order_no text, paid_fen int"`` → ``(("order_no", "text"), ("paid_fen", "int"))``."""
    out = []
    for part in spec.split(","):
        name, kind = part.split()
        out.append((name, kind))
    return tuple(out)
