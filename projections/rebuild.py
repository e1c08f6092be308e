"""Rebuild from zero into fresh tables, then swap them in atomically.

1. Fresh tables ``pj_<table>__b`` (primary keys only: secondary indexes are built once at
   the end, which is much cheaper than keeping them up to date row by row), a tracking row
   ``ledger:<name>__b`` at 0.
2. Catch up with the log in large batches, each its own transaction, showing a progress bar
   (``projections.copies``), then create the secondary indexes. On PostgreSQL the
   projections are split between processes, one per core by default (``--jobs``), each
   building its share (``projections.parallel``).
3. Catch up again with what arrived meanwhile.
4. One transaction: lock the live and the build tracking rows (a live worker's batch waits),
   apply what arrived meanwhile, drop each live table and rename its rebuild in its place,
   and set the live tracking row to the rebuild's position. Readers see the old tables or
   the new ones, never a half-built one. A live worker goes on from the new position.

Only one rebuild (or check) runs at a time (``Db.exclusive``, held for the rebuild's
lifetime and released when its process dies). An interrupted rebuild (Ctrl-C, SIGTERM, a
building process that failed) drops its copies before it exits; one that was killed leaves
them, with their tracking rows as a marker, and whoever next takes the lock — the next
rebuild, or a worker starting while no rebuild holds it — drops them
(``copies.drop_leftovers``). ``status`` says "rebuilding" only while the lock is held.

A copy that stops on a poison event (``projections.poison``) is not swapped in: the live
tables stay as they were, the others are swapped in, and the report names the projection,
the position and the reason.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tqdm import tqdm

from projections.base import Projection
from projections.copies import catch_up, drop_leftovers, drop_one, prepare, removed_on_failure
from projections.db import META_TABLE, SWAP_LOCK_TIMEOUT_S
from projections.engine import Runtime, Target, new_generation
from projections.parallel import DEFAULT_JOBS, BuildPlan, build_copies
from projections.poison import Halt, clear_halt, read_halts
from projections.schema import BUILD, LIVE
from projections.tracking import tracking_name

# No tqdm monitor thread: the rebuild forks, and a fork copies no thread but the caller's
# (a lock another thread held at that moment stays held in the child).
tqdm.monitor_interval = 0

REBUILD_BATCH = 20_000
MAX_SWAP_CATCH_UP_STEPS = 100


@dataclass
class RebuildReport:
    projections: list[str]
    jobs: int = 1
    events: int = 0
    seconds: float = 0.0
    position: int = 0
    worker_peak_rss_mb: list[float] = field(default_factory=list)
    # Projections whose copy stopped on a poison event: not swapped in.
    stopped: dict[str, Halt] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def swap(
    rt: Runtime, targets: Sequence[Target], gen: str, batch: int
) -> tuple[int, dict[str, Halt]]:
    """Put the rebuilt tables in place of the live ones, in one transaction; copies that
    stopped on a poison event are dropped instead. Returns the lowest position swapped in
    and the stopped copies' halts by projection."""
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
        halts = read_halts(db, cur)
        db.create_meta(cur)
        stopped = {}
        for target in targets:
            if target.name in halts:
                stopped[target.projection.name] = halts[target.name]
                drop_one(rt, cur, target)
                continue
            _swap_one(rt, cur, target.projection, gen, positions[target.name])
            tracking.remove(cur, target.name)
        db.notify_progress(cur)
    swapped = [positions[t.name] for t in targets if t.projection.name not in stopped]
    return min(swapped, default=0), stopped


def _swap_one(rt: Runtime, cur: Any, projection: Projection, gen: str, position: int) -> None:
    db = rt.db
    for table in projection.tables:
        db.drop_table(cur, table.physical(LIVE))
        db.rename_table(cur, table.physical(BUILD), table.physical(LIVE))
    live = tracking_name(projection.name, LIVE)
    rt.tracking.reset(cur, live, position)
    clear_halt(db, cur, live)  # the new tables are past any event the old ones stopped on
    now = db.ts(datetime.now(UTC))
    cur.execute(db.sql(f"DELETE FROM {META_TABLE} WHERE projection = %s"), (projection.name,))
    cur.execute(
        db.sql(
            f"INSERT INTO {META_TABLE} (projection, version, generation, rebuilt_at, "
            "last_batch_at) VALUES (%s, %s, %s, %s, %s)"
        ),
        (projection.name, projection.version, gen, now, now),
    )


def rebuild(
    rt: Runtime,
    projections: Sequence[Projection],
    *,
    batch: int = REBUILD_BATCH,
    jobs: int = DEFAULT_JOBS,
    show_progress: bool = True,
) -> RebuildReport:
    """Rebuild ``projections`` from zero and swap them in (see the module docstring)."""
    report = RebuildReport([p.name for p in projections])
    targets = [Target(p, BUILD) for p in projections]
    gen = new_generation()
    with rt.db.exclusive("rebuild"):
        started = time.perf_counter()
        drop_leftovers(rt, BUILD)
        prepare(rt, targets, gen, indexes=False)
        with removed_on_failure(rt, targets):
            with rt.db.snapshot() as cur:
                head = rt.db.head(cur)
            with tqdm(
                total=head, unit="ev", unit_scale=True, disable=not show_progress, desc="rebuild"
            ) as bar:

                def progress(position: int) -> None:
                    bar.total = max(bar.total or 0, position)
                    bar.update(position - bar.n)

                plan = BuildPlan(batch, gen)
                built = build_copies(rt, targets, plan, jobs=jobs, on_progress=progress)
            last = catch_up(rt, targets, batch)
            report.jobs = built.jobs
            report.worker_peak_rss_mb = built.peak_rss_mb
            report.events = built.read + last.read
            report.position, report.stopped = swap(rt, targets, gen, batch)
        report.seconds = time.perf_counter() - started
    return report
