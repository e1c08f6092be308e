"""Where each projection stands: its position, the head of the log, and how far behind.

``lag_events`` counts the events after the projection's position (exactly: positions have
holes). ``lag_seconds`` is the event time between the last event applied and the head: zero
when caught up, and independent of the wall clock, so a quiet ledger does not look behind.
``last_batch_at`` is the wall-clock time of the worker's last batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from projections.engine import Runtime
from projections.events import RawEvent
from projections.registry import PROJECTIONS
from projections.schema import BUILD, LIVE
from projections.tracking import tracking_name

META_COLUMNS = "projection, version, generation, rebuilt_at, last_batch_at"


def event_time(rt: Runtime, cur: Any, position: int) -> datetime | None:
    found = rt.db.state_at(cur, position)
    if found is None:
        return None
    topic, state = found
    return rt.engine.decoder.decode(RawEvent(position, topic, "", 0, state)).at


def _meta(rt: Runtime, cur: Any) -> dict[str, tuple[Any, ...]]:
    db = rt.db
    if not db.table_exists(cur, "pj_meta"):
        return {}
    cur.execute(f"SELECT {META_COLUMNS} FROM pj_meta")
    return {row[0]: tuple(row) for row in cur.fetchall()}


def status(rt: Runtime) -> dict[str, Any]:
    db = rt.db
    with db.snapshot() as cur:
        head = db.head(cur)
        head_at = event_time(rt, cur, head) if head else None
        meta = _meta(rt, cur)
        names = [tracking_name(p.name, s) for p in PROJECTIONS for s in (LIVE, BUILD)]
        positions = rt.tracking.read(cur, names)
        rows = []
        for projection in PROJECTIONS:
            position = positions.get(tracking_name(projection.name, LIVE))
            row = _one(
                rt,
                cur,
                projection.name,
                projection.version,
                position,
                head,
                head_at,
                meta.get(projection.name),
            )
            row["rebuilding"] = tracking_name(projection.name, BUILD) in positions
            rows.append(row)
    return {"head": head, "head_at": _iso(head_at), "projections": rows}


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
