"""Copies of projections that one process builds alone (a rebuild's, a check's): fresh empty
tables, then the log applied in large batches, each its own transaction.

Rows are kept between batches in a bounded cache (``Engine.own``), safe because only this
process writes these tables, and a thread reads and decodes the next page meanwhile
(``projections.pipeline``). Memory is bounded by the page and the cache, not by the log.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from projections.engine import Runtime, StepResult, Target, create_tables
from projections.pipeline import catch_up_pipelined

GAP_WAIT_S = 0.05

AfterPage = Callable[[StepResult], None]


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


def create_indexes(rt: Runtime, targets: Sequence[Target], gen: str) -> None:
    """The secondary indexes of copies built without them: once at the end is much cheaper
    than keeping them up to date row by row."""
    with rt.db.write() as cur:
        for target in targets:
            for table in target.projection.tables:
                rt.db.create_indexes(cur, table, table.physical(target.suffix), gen)


def catch_up(
    rt: Runtime,
    targets: Sequence[Target],
    batch: int,
    *,
    stop: int | None = None,
    after_page: AfterPage | None = None,
) -> StepResult:
    """Step until the targets reach the head (or ``stop``)."""
    with quiet_gc():
        return _catch_up(rt, targets, batch, stop, after_page or _nothing)


def _nothing(result: StepResult) -> None:
    pass


@contextmanager
def quiet_gc() -> Iterator[None]:
    """A batch allocates hundreds of thousands of containers (decoded events, rows) that
    reference counting frees; the cyclic collector's passes over them (and over the row
    cache) cost more than the work itself, and our rows make no cycles. Collect once at the
    end instead (unless the collector was off already: a rebuild's child process)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect()


def _catch_up(
    rt: Runtime, targets: Sequence[Target], batch: int, stop: int | None, after_page: AfterPage
) -> StepResult:
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


@contextmanager
def owned(rt: Runtime, targets: Sequence[Target]) -> Iterator[None]:
    for target in targets:
        rt.engine.own(target)
    try:
        yield
    finally:
        for target in targets:
            rt.engine.disown(target)
