"""Rebuild from zero into fresh tables, then swap them in atomically.

1. Fresh tables ``pj_<table>__b`` (primary keys only: secondary indexes are built once at
   the end, which is much cheaper than keeping them up to date row by row), a tracking row
   ``ledger:<name>__b`` at 0.
2. Catch up with the log in large batches, each its own transaction (so a crash loses at most
   one batch), showing a progress bar. A thread reads and decodes the next page meanwhile
   (``projections.pipeline``), and rows are kept between batches in a bounded cache, safe
   because this process alone writes these tables. Memory is bounded by the page and the
   cache, not by the log.
3. Create the secondary indexes, catch up again.
4. One transaction: lock the live and the build tracking rows (a live worker's batch waits),
   apply what arrived meanwhile, drop each live table and rename its rebuild in its place,
   and set the live tracking row to the rebuild's position. Readers see the old tables or
   the new ones, never a half-built one. A live worker goes on from the new position.

Only one rebuild (or check) runs at a time (``Db.exclusive``); a rebuild that died leaves
``__b`` tables that the next one drops first.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tqdm import tqdm

from projections.base import Projection
from projections.db import META_TABLE, SWAP_LOCK_TIMEOUT_S
from projections.engine import Runtime, StepResult, Target, create_tables, new_generation
from projections.pipeline import catch_up_pipelined
from projections.schema import BUILD, LIVE
from projections.tracking import tracking_name

REBUILD_BATCH = 20_000
MAX_SWAP_CATCH_UP_STEPS = 100
GAP_WAIT_S = 0.05

Progress = Callable[[int, int], None]  # (position now, head) after each batch


@dataclass
class RebuildReport:
    projections: list[str]
    events: int = 0
    seconds: float = 0.0
    position: int = 0
    swapped_at: datetime | None = None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def prepare(rt: Runtime, targets: Sequence[Target], gen: str, *, indexes: bool) -> None:
    """Drop what an earlier run left, create the copies' tables, tracking rows at 0."""
    db = rt.db
    with db.write() as cur:
        for target in targets:
            for table in target.projection.tables:
                db.drop_table(cur, table.physical(target.suffix))
            create_tables(db, cur, target, gen, indexes=indexes)
            rt.tracking.ensure(cur, [target.name])
            rt.tracking.reset(cur, target.name, 0)


def catch_up(
    rt: Runtime,
    targets: Sequence[Target],
    batch: int,
    *,
    stop: int | None = None,
    progress: Progress | None = None,
    report: RebuildReport | None = None,
) -> StepResult:
    """Step until the targets reach the head (or ``stop``)."""
    with quiet_gc():
        return _catch_up(rt, targets, batch, stop, progress, report)


@contextmanager
def quiet_gc() -> Iterator[None]:
    """A batch allocates hundreds of thousands of containers (decoded events, rows) that
    reference counting frees; the cyclic collector's passes over them (and over the row
    cache) cost more than the work itself, and our rows make no cycles. Collect once at the
    end instead."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()


def _catch_up(
    rt: Runtime,
    targets: Sequence[Target],
    batch: int,
    stop: int | None,
    progress: Progress | None,
    report: RebuildReport | None,
) -> StepResult:
    def after_page(result: StepResult) -> None:
        if report is not None:
            report.events += result.read
            report.position = result.position
        if progress is not None:
            progress(result.position, stop or result.position)

    if all(t.name in rt.engine.caches for t in targets):
        done = catch_up_pipelined(rt, targets, batch, stop, after_page)
        if done is not None:
            return done
    while True:
        result = rt.engine.step(targets, batch, stop)
        after_page(result)
        if result.more:
            continue
        if not result.blocked:
            return result
        time.sleep(GAP_WAIT_S)  # a hole that may still fill: wait, never skip it


def swap(rt: Runtime, targets: Sequence[Target], gen: str, batch: int) -> int:
    """Put the rebuilt tables in place of the live ones, in one transaction."""
    db, tracking = rt.db, rt.tracking
    with db.write() as cur:
        db.set_lock_timeout(cur, SWAP_LOCK_TIMEOUT_S)
        live = [tracking_name(t.projection.name, LIVE) for t in targets]
        tracking.ensure(cur, live)
        tracking.read(cur, [*live, *(t.name for t in targets)], lock=True)
        for _ in range(MAX_SWAP_CATCH_UP_STEPS):
            if not rt.engine.step_in(cur, targets, batch).more:
                break
        positions = tracking.read(cur, [t.name for t in targets])
        db.create_meta(cur)
        for target in targets:
            _swap_one(rt, cur, target.projection, gen, positions[target.name])
            tracking.remove(cur, target.name)
        db.notify_progress(cur)
    return min(positions.values()) if positions else 0


def _swap_one(rt: Runtime, cur: Any, projection: Projection, gen: str, position: int) -> None:
    db = rt.db
    for table in projection.tables:
        db.drop_table(cur, table.physical(LIVE))
        db.rename_table(cur, table.physical(BUILD), table.physical(LIVE))
    rt.tracking.reset(cur, tracking_name(projection.name, LIVE), position)
    now = db.ts(datetime.now(UTC))
    cur.execute(db.sql(f"DELETE FROM {META_TABLE} WHERE projection = %s"), (projection.name,))
    cur.execute(
        db.sql(
            f"INSERT INTO {META_TABLE} (projection, version, generation, rebuilt_at, "
            "last_batch_at) VALUES (%s, %s, %s, %s, %s)"
        ),
        (projection.name, projection.version, gen, now, now),
    )


@contextmanager
def owned(rt: Runtime, targets: Sequence[Target]) -> Iterator[None]:
    for target in targets:
        rt.engine.own(target)
    try:
        yield
    finally:
        for target in targets:
            rt.engine.disown(target)


def rebuild(
    rt: Runtime,
    projections: Sequence[Projection],
    *,
    batch: int = REBUILD_BATCH,
    show_progress: bool = True,
) -> RebuildReport:
    """Rebuild ``projections`` from zero and swap them in (see the module docstring)."""
    report = RebuildReport([p.name for p in projections])
    targets = [Target(p, BUILD) for p in projections]
    gen = new_generation()
    with rt.db.exclusive("rebuild"):
        started = time.perf_counter()
        prepare(rt, targets, gen, indexes=False)
        with rt.db.snapshot() as cur:
            head = rt.db.head(cur)
        with tqdm(
            total=head, unit="ev", unit_scale=True, disable=not show_progress, desc="rebuild"
        ) as bar:

            def progress(position: int, _: int) -> None:
                bar.total = max(bar.total or 0, position)
                bar.update(position - bar.n)

            with owned(rt, targets):
                catch_up(rt, targets, batch, progress=progress, report=report)
        with rt.db.write() as cur:
            for target in targets:
                for table in target.projection.tables:
                    rt.db.create_indexes(cur, table, table.physical(BUILD), gen)
        catch_up(rt, targets, batch, report=report)
        report.position = swap(rt, targets, gen, batch)
        report.seconds = time.perf_counter() - started
        report.swapped_at = datetime.now(UTC)
    return report
