"""Poison events: an event one projection cannot apply stops that projection alone.

An event may be one a projection cannot apply: a value its table cannot hold (a NUL in a
text column on PostgreSQL, an integer beyond 64 bits), a payload its handler does not
expect, a state that does not decode. The engine applies each projection of a batch in a
savepoint of its own (``Engine.apply_page``); when one fails for a reason that is the
event's and not the moment's (``is_transient`` tells them apart), the engine finds the
first event that fails by bisecting the batch, applies what comes before it, moves that
projection's tracking row to just before it and records a halt here — all in the batch's
transaction, so exactly-once holds. The other projections carry on in the same batch and
every batch after; the halted one is left out until it resumes.

A halt (``pj_halts``, one row per tracking name) holds the position, the event's topic
and a reason that carries no value from the event: the exception's class and its SQLSTATE
(PostgreSQL) or SQLite error name.

Resuming (projections/README.md, "Poison events"):
- every start of ``ledger projections run`` retries the halted projections it runs, once,
  from where they stopped (after a fix or an upgrade); applying the event clears the halt,
  failing again keeps it (``attempts`` counts the tries);
- ``ledger projections rebuild NAME`` swaps in tables built past the event (by new code),
  which clears the halt;
- ``ledger projections skip NAME POSITION`` leaves the event out of that projection for
  good: it records the skip (``pj_skips``, with the projection's code version), clears the
  halt and moves the projection past the event. A rebuild or check by the same version
  skips it too, so a check compares like with like; a new version applies it again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from projections.db import HALTS_TABLE, SKIPS_TABLE, Db

# SQLSTATE classes of failures of the moment, not of an event: connection (08), transaction
# rollback (40: serialisation, deadlock), insufficient resources (53), object not in
# prerequisite state (55: lock not available), operator intervention (57: cancelled,
# shut down), system error (58), internal error (XX).
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "55", "57", "58", "XX"})
TRANSIENT_SQLITE_ERRORS = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_NOMEM",
    "SQLITE_INTERRUPT",
    "SQLITE_CANTOPEN",
    "SQLITE_PROTOCOL",
)


class Undecodable(Exception):
    """An event whose stored state does not decode (raised when a projection applies it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the moment (retry the batch) rather than of an event
    (a poison event: stop the projection)."""
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, psycopg.Error):
        if exc.sqlstate:
            return exc.sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES
        # No SQLSTATE: raised by the driver. A lost connection is transient; a value the
        # driver refuses to send (a NUL in text, an int beyond 64 bits) is the event's.
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        return name.startswith(TRANSIENT_SQLITE_ERRORS)
    return False


def reason_of(exc: BaseException) -> str:
    """The exception's class and database error code: never its message, which may quote
    a value of the event (personal data)."""
    if isinstance(exc, Undecodable):
        return f"undecodable: {exc.reason}"
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    if isinstance(exc, psycopg.Error) and exc.sqlstate:
        return f"{name} (SQLSTATE {exc.sqlstate})"
    code = getattr(exc, "sqlite_errorname", None)
    return f"{name} ({code})" if code else name


@dataclass(frozen=True)
class Halt:
    """A projection (copy) stopped on the event at ``position``: it has applied everything
    before it."""

    target: str  # its tracking name, ``ledger:<projection><suffix>``
    position: int
    topic: str
    reason: str
    since: datetime | None
    attempts: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "topic": self.topic,
            "reason": self.reason,
            "since": None if self.since is None else self.since.isoformat(),
            "attempts": self.attempts,
        }


def read_halts(db: Db, cur: Any) -> dict[str, Halt]:
    cur.execute(f"SELECT target, position, topic, reason, since, attempts FROM {HALTS_TABLE}")
    return {
        row[0]: Halt(row[0], int(row[1]), row[2], row[3], db.ts_from(row[4]), int(row[5]))
        for row in cur.fetchall()
    }


def record_halt(db: Db, cur: Any, target: str, position: int, topic: str, reason: str) -> Halt:
    """Record (or, for the same event again, count another try of) a halt."""
    earlier = read_halts(db, cur).get(target)
    attempts = 1
    since = datetime.now(UTC)
    if earlier is not None and earlier.position == position:
        attempts = earlier.attempts + 1
        since = earlier.since or since
    clear_halt(db, cur, target)
    cur.execute(
        db.sql(
            f"INSERT INTO {HALTS_TABLE} (target, position, topic, reason, since, attempts) "
            "VALUES (%s, %s, %s, %s, %s, %s)"
        ),
        (target, position, topic, reason, db.ts(since), attempts),
    )
    return Halt(target, position, topic, reason, since, attempts)


def clear_halt(db: Db, cur: Any, target: str, *, up_to: int | None = None) -> bool:
    """Remove ``target``'s halt (only one at or below ``up_to``, when given); whether there
    was one."""
    bound = "" if up_to is None else f" AND position <= {int(up_to)}"
    cur.execute(db.sql(f"DELETE FROM {HALTS_TABLE} WHERE target = %s{bound}"), (target,))
    return bool(cur.rowcount and cur.rowcount > 0)


Skips = Mapping[tuple[str, int], frozenset[int]]  # (projection, version) -> positions


def read_skips(db: Db, cur: Any) -> dict[tuple[str, int], frozenset[int]]:
    cur.execute(f"SELECT projection, version, position FROM {SKIPS_TABLE}")
    found: dict[tuple[str, int], set[int]] = {}
    for projection, version, position in cur.fetchall():
        found.setdefault((projection, int(version)), set()).add(int(position))
    return {key: frozenset(positions) for key, positions in found.items()}


def record_skip(db: Db, cur: Any, projection: str, version: int, halt: Halt) -> None:
    cur.execute(
        db.sql(
            f"INSERT INTO {SKIPS_TABLE} (projection, version, position, topic, reason, "
            "skipped_at) VALUES (%s, %s, %s, %s, %s, %s)"
        ),
        (projection, version, halt.position, halt.topic, halt.reason, db.ts(datetime.now(UTC))),
    )
