"""Where each projection stands: its position, the head of the log, and how far behind.

``lag_events`` counts the events after the projection's position (exactly: positions have
holes). ``lag_seconds`` is the event time between the last event applied and the head: zero
when caught up, and independent of the wall clock, so a quiet ledger does not look behind.
``last_batch_at`` is the wall-clock time of the worker's last batch.

``stopped`` is the halt of a projection stopped on a poison event (position, topic, reason,
since, attempts; ``projections.poison``), ``skipped`` the positions an operator left out of
it. ``rebuilding`` is true only while a rebuild holds its lock; copies without one are an
interrupted rebuild's leftovers (``rebuild_leftovers``), which the next rebuild or worker
removes.

``last_check`` is the projection's latest ``ledger projections check`` result
(``projections.check_results``), or None if it was never checked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from projections.check_results import last_results
from projections.db import HALTS_TABLE
from projections.engine import Runtime
from projections.events import RawEvent
from projections.poison import read_halts, read_skips
from projections.registry import PROJECTIONS
from projections.schema import BUILD, LIVE
from projections.tracking import tracking_name

META_COLUMNS = "projection, version, generation, rebuilt_at, last_batch_at"


def event_time(rt: Runtime, cur: Any, position: int) -> datetime | None:
    found = rt.db.state_at(cur, position)
    if found is None:
        return None
    topic, state = found
    try:
        return rt.engine.decoder.decode(RawEvent(position, topic, "", 0, state)).at
    except Exception:  # noqa: BLE001 - a poison event has no time to show
        return None


def _meta(rt: Runtime, cur: Any) -> dict[str, tuple[Any, ...]]:
    db = rt.db
    if not db.table_exists(cur, "pj_meta"):
        return {}
    cur.execute(f"SELECT {META_COLUMNS} FROM pj_meta")
    return {row[0]: tuple(row) for row in cur.fetchall()}


def status(rt: Runtime) -> dict[str, Any]:
    db = rt.db
    rebuild_running = db.running("rebuild")
    with db.snapshot() as cur:
        head = db.head(cur)
        head_at = event_time(rt, cur, head) if head else None
        meta = _meta(rt, cur)
        known = db.table_exists(cur, HALTS_TABLE)
        halts = read_halts(db, cur) if known else {}
        skips = read_skips(db, cur) if known else {}
        names = [tracking_name(p.name, s) for p in PROJECTIONS for s in (LIVE, BUILD)]
        positions = rt.tracking.read(cur, names)
        checks = last_results(db, cur)
        rows = []
        for projection in PROJECTIONS:
            live = tracking_name(projection.name, LIVE)
            row = _one(
                rt,
                cur,
                projection.name,
                projection.version,
                positions.get(live),
                head,
                head_at,
                meta.get(projection.name),
            )
            halt = halts.get(live)
            row["stopped"] = None if halt is None else halt.as_dict()
            row["skipped"] = sorted(skips.get((projection.name, projection.version), ()))
            row["last_check"] = checks.get(projection.name)
            copy = tracking_name(projection.name, BUILD) in positions
            row["rebuilding"] = copy and rebuild_running
            row["rebuild_leftovers"] = copy and not rebuild_running
            rows.append(row)
    stopped = [row["name"] for row in rows if row["stopped"]]
    return {"head": head, "head_at": _iso(head_at), "stopped": stopped, "projections": rows}


def _one(
    rt: Runtime,
    cur: Any,
    name: str,
    version: int,
    position: int | None,
    head: int,
    head_at: datetime | None,
    meta: tuple[Any, ...] | None,
) -> dict[str, Any]:
    db = rt.db
    known = position is not None
    position = position or 0
    lag_events = db.count_after(cur, position) if head > position else 0
    lag_seconds = 0.0
    if lag_events and head_at is not None:
        since = event_time(rt, cur, position or db.first_position(cur))
        lag_seconds = max(0.0, (head_at - since).total_seconds()) if since else 0.0
    stored_version = int(meta[1]) if meta else None
    last_batch = db.ts_from(meta[4]) if meta else None
    return {
        "name": name,
        "position": position,
        "head": head,
        "lag_events": lag_events,
        "lag_seconds": round(lag_seconds, 3),
        "version": version,
        "built_by_version": stored_version,
        "needs_rebuild": stored_version is not None and stored_version != version,
        "created": known,
        "last_batch_at": _iso(last_batch),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
