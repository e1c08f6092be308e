"""Correctness check: rebuild each projection in scratch tables and compare row by row.

Scratch copies ``pj_<table>__c`` of every projection are built from zero up to the lowest
of their live positions, split between processes as a rebuild is (``projections.parallel``).
Then, for each projection: read its live position P, take its copy up to exactly P, and, in
one read snapshot, confirm the live position is still P and compare every table in key order
(both sides streamed, so memory does not grow with the tables). If a live worker moved on
meanwhile, the copy catches up to the new P and the comparison is tried again. Scratch tables
are dropped at the end, also when the check is interrupted; a killed check's are dropped by
the next check (or a worker starting while no check runs).

A copy that stops on a poison event before P cannot be compared: its result names the
position and the reason (``stopped``), and the other projections are compared as usual.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from ledger.clock import Clock, SystemClock
from projections.base import Projection
from projections.check_results import record_results
from projections.copies import catch_up, drop, drop_leftovers, prepare, removed_on_failure
from projections.db import ProjectionsBusy
from projections.engine import Runtime, Target, ensure_live, new_generation
from projections.parallel import DEFAULT_JOBS, BuildPlan, build_copies
from projections.poison import Halt, read_halts
from projections.rebuild import REBUILD_BATCH
from projections.schema import CHECK, LIVE, Table
from projections.tracking import tracking_name

MAX_ATTEMPTS = 5
MAX_DIFFS_SHOWN = 20


@dataclass
class TableDiff:
    table: str
    rows_live: int = 0
    rows_rebuilt: int = 0
    differences: int = 0
    shown: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ProjectionCheck:
    name: str
    position: int
    tables: list[TableDiff]
    stopped: Halt | None = None  # its copy stopped on a poison event: not compared

    @property
    def differences(self) -> int:
        return sum(t.differences for t in self.tables)


def _differ(table: Table, live: tuple[Any, ...], rebuilt: tuple[Any, ...]) -> dict[str, Any]:
    return {
        c: {"live": _show(a), "rebuilt": _show(b)}
        for c, a, b in zip(table.column_names, live, rebuilt, strict=True)
        if a != b
    }


def _show(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def _key(table: Table, row: tuple[Any, ...]) -> tuple[Any, ...]:
    names = table.column_names
    return tuple(row[names.index(c)] for c in table.key)


def _show_key(key: tuple[Any, ...] | None) -> Any:
    assert key is not None
    return _show(key[0]) if len(key) == 1 else [_show(part) for part in key]


def compare_rows(
    table: Table, live: Iterator[tuple[Any, ...]], rebuilt: Iterator[tuple[Any, ...]], shown: int
) -> TableDiff:
    """Merge two key-ordered row streams; count and describe every difference."""
    diff = TableDiff(table.name)
    # A row is a tuple, never None: None marks a stream's end.
    a, b = next(live, None), next(rebuilt, None)
    while a is not None or b is not None:
        ka = _key(table, a) if a is not None else None
        kb = _key(table, b) if b is not None else None
        if kb is None or (ka is not None and ka < kb):
            note = {"key": _show_key(ka), "problem": "in live only"}
            diff.rows_live += 1
            a = next(live, None)
        elif ka is None or kb < ka:
            note = {"key": _show_key(kb), "problem": "missing from live"}
            diff.rows_rebuilt += 1
            b = next(rebuilt, None)
        else:
            assert a is not None and b is not None  # both keys were read from them
            columns = _differ(table, a, b)
            note = {"key": _show_key(ka), "problem": "differs", "columns": columns}
            diff.rows_live += 1
            diff.rows_rebuilt += 1
            a, b = next(live, None), next(rebuilt, None)
            if not columns:
                continue
        diff.differences += 1
        if len(diff.shown) < shown:
            diff.shown.append(note)
    return diff


def _compare(rt: Runtime, cur: Any, projection: Projection, shown: int) -> list[TableDiff]:
    out = []
    for table in projection.tables:
        # Both streams closed here, in the snapshot, before the connection is: an interrupt
        # (Ctrl-C, SIGTERM) in the comparison would otherwise leave them to the garbage
        # collector, which closes their cursors once the connection is gone, noisily.
        with (
            closing(rt.db.iter_rows(cur, table, table.physical(LIVE), "pj_cmp_live")) as live,
            closing(rt.db.iter_rows(cur, table, table.physical(CHECK), "pj_cmp_check")) as rebuilt,
        ):
            out.append(compare_rows(table, live, rebuilt, shown))
    return out


def _live_positions(rt: Runtime, projections: Sequence[Projection]) -> list[int]:
    names = [tracking_name(p.name, LIVE) for p in projections]
    with rt.db.snapshot() as cur:
        found = rt.tracking.read(cur, names)
    return [found.get(name, 0) for name in names]


def _catch_up_and_compare(
    rt: Runtime, projection: Projection, target: Target, batch: int, shown: int
) -> ProjectionCheck:
    live_name = tracking_name(projection.name, LIVE)
    for _ in range(MAX_ATTEMPTS):
        with rt.db.snapshot() as cur:
            position = rt.tracking.read(cur, [live_name]).get(live_name, 0)
        catch_up(rt, [target], batch, stop=position)
        with rt.db.snapshot() as cur:
            halt = read_halts(rt.db, cur).get(target.name)
            if halt is not None:
                return ProjectionCheck(projection.name, position, [], halt)
            now = rt.tracking.read(cur, [live_name, target.name])
            if now.get(live_name, 0) != position or now[target.name] != position:
                continue  # the live worker moved on: catch up and compare again
            return ProjectionCheck(projection.name, position, _compare(rt, cur, projection, shown))
    raise ProjectionsBusy(
        f"{projection.name}: the live projection kept moving; try again when quieter"
    )


def check(
    rt: Runtime,
    projections: Sequence[Projection],
    *,
    batch: int = REBUILD_BATCH,
    shown: int = MAX_DIFFS_SHOWN,
    jobs: int = DEFAULT_JOBS,
    clock: Clock | None = None,
) -> list[ProjectionCheck]:
    """Build every projection's scratch copy up to the lowest live position (split between
    processes as a rebuild is), then take each to its own live position and compare. A
    projection never run yet is compared as what it is: empty, at position 0. The results
    are recorded (``projections.check_results``) as of ``clock``'s time when the comparison
    ends (the system's by default), once the scratch copies are dropped."""
    targets = [Target(p, CHECK) for p in projections]
    gen = new_generation()
    ensure_live(rt.db, rt.tracking, projections)
    with rt.db.exclusive("check"):
        drop_leftovers(rt, CHECK)
        prepare(rt, targets, gen, indexes=False)
        with removed_on_failure(rt, targets):
            lowest = min(_live_positions(rt, projections), default=0)
            plan = BuildPlan(batch, gen, stop=lowest, indexes=False)
            build_copies(rt, targets, plan, jobs=jobs, on_progress=_unshown)
            results = [_catch_up_and_compare(rt, t.projection, t, batch, shown) for t in targets]
        drop(rt, targets)
        with rt.db.write() as cur:
            at = (clock or SystemClock()).now()
            record_results(rt.db, cur, secrets.token_hex(8), at, results)
        return results


def _unshown(position: int) -> None:
    pass
