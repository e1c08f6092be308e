"""The results of ``ledger projections check`` (projections/check.py), kept in the read-model
database so ``ledger projections status`` and the console's projections page can show the
last one: when it ran, at which position each projection was compared, whether it equalled
its rebuild, and if not how many rows differed in which tables (or why it could not be
compared: its rebuild stopped on a poison event).

One row per projection per check, in ``pj_checks`` (created with ``pj_meta``,
projections/db.py): ``check_id`` groups the rows of one run, ``checked_at`` is the time the
check finished by the clock it was given (the system's for the CLI). Only a check that
finished is recorded; one interrupted, or refused because another holds the lock, leaves
the last result standing. Rows are never changed; a check adds its own (a handful per run,
operator-run: the table stays small).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from projections.db import CHECKS_TABLE, Db, dump_json, json_out

if TYPE_CHECKING:
    from projections.check import ProjectionCheck

COLUMNS = (
    "check_id, projection, checked_at, position, differences, differing_tables, "
    "stopped_position, stopped_reason"
)


def record_results(
    db: Db, cur: Any, check_id: str, checked_at: datetime, results: Sequence[ProjectionCheck]
) -> None:
    """Add one row per result of the check ``check_id`` that finished at ``checked_at``
    (timezone-aware)."""
    for result in results:
        tables = sorted(t.table for t in result.tables if t.differences)
        halt = result.stopped
        cur.execute(
            db.sql(f"INSERT INTO {CHECKS_TABLE} ({COLUMNS}) VALUES ({', '.join(['%s'] * 8)})"),
            (
                check_id,
                result.name,
                db.ts(checked_at),
                result.position,
                result.differences,
                dump_json(tables),
                None if halt is None else halt.position,
                None if halt is None else halt.reason,
            ),
        )


def last_results(db: Db, cur: Any) -> dict[str, dict[str, Any]]:
    """Each projection's latest check, by name: ``{"at": ISO 8601 UTC, "check_id",
    "position", "outcome": "same" | "differs" | "not_compared", "differences",
    "tables": [table names that differ], "stopped": {"position", "reason"} | None}``; a
    projection never checked is absent (as is everything before the table exists)."""
    if not db.table_exists(cur, CHECKS_TABLE):
        return {}
    cur.execute(
        f"SELECT {COLUMNS} FROM {CHECKS_TABLE} c WHERE checked_at = "
        f"(SELECT max(checked_at) FROM {CHECKS_TABLE} l WHERE l.projection = c.projection)"
    )
    found: dict[str, dict[str, Any]] = {}
    for row in cur.fetchall():
        check_id, name, at, position, differences, tables, stopped_at, reason = row
        stopped = None if stopped_at is None else {"position": int(stopped_at), "reason": reason}
        outcome = "not_compared" if stopped else "differs" if differences else "same"
        checked_at = db.ts_from(at)
        assert checked_at is not None  # the column is NOT NULL
        found[name] = {
            "at": checked_at.isoformat(),
            "check_id": check_id,
            "position": int(position),
            "outcome": outcome,
            "differences": int(differences),
            "tables": json_out(tables),
            "stopped": stopped,
        }
    return found
