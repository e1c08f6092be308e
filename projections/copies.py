"""Copies of projections that one process builds alone (a rebuild's, a check's): fresh empty
tables, then the log applied in large batches, each its own transaction.

Rows are kept between batches in a bounded cache (``Engine.own``), safe because only this
process writes these tables, and a thread reads and decodes the next page meanwhile
(``projections.pipeline``). Memory is bounded by the page and the cache, not by the log.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from projections.db import ProjectionsBusy
from projections.engine import Runtime, StepResult, Target, create_tables
from projections.pipeline import catch_up_pipelined
from projections.poison import clear_halt
from projections.registry import PROJECTIONS

log = logging.getLogger(__name__)

GAP_WAIT_S = 0.05

AfterPage = Callable[[StepResult], None]


def prepare(rt: Runtime, targets: Sequence[Target], gen: str, *, indexes: bool) -> None:
    """Drop what an earlier run left, create the copies' tables, tracking rows at 0; read
    the events operators left out (``projections skip``), which the copies leave out too."""
    db = rt.db
    with db.write() as cur:
        db.create_meta(cur)
        rt.engine.load_skips(cur)
        for target in targets:
            drop_one(rt, cur, target)
            create_tables(db, cur, target, gen, indexes=indexes)
            rt.tracking.ensure(cur, [target.name])
            rt.tracking.reset(cur, target.name, 0)


def drop_one(rt: Runtime, cur: Any, target: Target) -> None:
    for table in target.projection.tables:
        rt.db.drop_table(cur, table.physical(target.suffix))
    rt.tracking.remove(cur, target.name)
    clear_halt(rt.db, cur, target.name)


def drop(rt: Runtime, targets: Sequence[Target]) -> None:
    """Remove copies: their tables, tracking rows and halts."""
    with rt.db.write() as cur:
        rt.db.create_meta(cur)
        for target in targets:
            drop_one(rt, cur, target)


def leftovers(rt: Runtime, suffix: str) -> list[Target]:
    """Every projection's copy ``suffix`` that exists: its tracking row or a table."""
    found = []
    with rt.db.snapshot() as cur:
        names = [Target(p, suffix) for p in PROJECTIONS]
        rows = rt.tracking.read(cur, [t.name for t in names])
        for target in names:
            tables = target.projection.tables
            if target.name in rows or any(
                rt.db.table_exists(cur, t.physical(suffix)) for t in tables
            ):
                found.append(target)
    return found


def drop_leftovers(rt: Runtime, suffix: str) -> list[str]:
    """With the lock of the job that makes copies ``suffix`` held: whatever copies exist are
    a dead run's (killed, or interrupted before it could clean up). Drop them."""
    stale = leftovers(rt, suffix)
    if stale:
        drop(rt, stale)
        log.warning(
            "removed the %s copies of %s left by an interrupted run",
            suffix,
            ", ".join(t.projection.name for t in stale),
        )
    return [t.projection.name for t in stale]


def remove_dead_copies(rt: Runtime, suffix: str, job: str) -> list[str]:
    """Drop copies ``suffix`` whose ``job`` (rebuild, check) is dead: no process holds its
    lock. A live one's are left alone; a failure is logged (the next run tries again)."""
    try:
        if rt.db.running(job) or not leftovers(rt, suffix):
            return []
        with rt.db.exclusive(job):
            return drop_leftovers(rt, suffix)
    except ProjectionsBusy:
        return []  # a new run just started: its copies are not leftovers
    except (psycopg.Error, sqlite3.Error) as exc:
        log.warning("could not remove an interrupted %s's copies now (%s)", job, type(exc).__name__)
        return []


@contextmanager
def removed_on_failure(rt: Runtime, targets: Sequence[Target]) -> Iterator[None]:
    """Copies that must not outlive a failed or interrupted run (Ctrl-C, SIGTERM, a building
    process that died) are dropped before the run ends and releases its lock, on a
    connection of their own (the run's may have been stopped mid-statement), once the run's
    has let go of what the interrupt left open (else the drop would wait on its locks for
    ever)."""
    try:
        yield
    except BaseException as exc:
        log.warning("%s: removing the unfinished copies", type(exc).__name__)
        try:
            rt.db.abandon_unfinished()
            fresh = rt.reconnected()
            try:
                drop(fresh, targets)
            finally:
                fresh.close()
        except Exception as failure:  # noqa: BLE001 - the next run removes them instead
            log.warning("could not remove the copies now (%s)", type(failure).__name__)
        raise


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
