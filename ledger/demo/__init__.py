"""`ledger demo`: a simulated stretch of mall traffic through the real ledger.

Where it writes:

- Without a URL (``ledger demo --fresh``) a fresh SQLite file ``var/demo-<seed>-<orders>.db``,
  so the same seed and size always give the same summary. It is built under a name of the
  run's own beside it and moved into place (replacing an earlier one) when the run ends: two
  runs at once never write into one file.
- With a URL (``ledger demo``: ``--database-url``, else ``LEDGER_DATABASE_URL``, else the
  ledger's default ``var/ledger.db``) it writes into that database as it is, beside whatever
  is there. Every business key of the run starts with a run id, ``demo<seed>``, or ``demo<seed>r2``,
  ``r3`` … when taken. The id is claimed in the ledger (``claim_run``), so runs started
  together take different ids. Nothing is deleted, so the counts are the same every run
  while the events table keeps growing.

Time is a ``ManualClock`` started at 2026-03-01 00:00 China time and moved forward step by
step; each command carries the clock's time. The demo runs under the DOMAIN.md section 9
policy defaults (not LEDGER_POLICY), since its story is timed against them.

The summary (ledger/demo/summary.py) is deterministic; ``DemoReport.timing`` (elapsed
time, rates) and ``DemoReport.run`` (database, run id) are not part of it.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ledger.application import CommandResult, Ledger, open_ledger
from ledger.clock import ManualClock
from ledger.demo.summary import Tally, build_summary
from ledger.demo.traffic import START, Step, Traffic
from ledger.domain.context import LOCAL_ACTOR
from ledger.domain.errors import CommandIdReused, Conflict, InvalidCommand
from ledger.domain.ids import promotion_id
from ledger.domain.policy import Policy
from ledger.domain.promotion import Promotion
from ledger.storage_url import StorageUrl

log = logging.getLogger("ledger.demo")

DEFAULT_ORDERS = 200
# The whole plan of a run is built before it starts (``Traffic.steps``), so memory grows with
# the orders: about 360 MB of peak RSS for 20,000 orders, 250 MB for 8,000 (SQLite, 2025).
# 50,000 stays well under a gigabyte and runs in minutes; more is a load test, not a demo.
MAX_ORDERS = 50_000
DEFAULT_SEED = 1
DEFAULT_BATCH = 100  # larger batches cost more than they save (UnitOfWork.mark is per stream)


@dataclass(frozen=True)
class DemoOptions:
    orders: int = DEFAULT_ORDERS
    seed: int = DEFAULT_SEED
    # None: a fresh SQLite file under var_dir; a string is parsed as --database-url
    database_url: StorageUrl | str | None = None
    var_dir: Path = Path("var")
    batch_size: int = DEFAULT_BATCH  # commands per transaction; 1 runs them one by one
    progress: bool | None = None  # None: a progress bar when stderr is a terminal


@dataclass
class DemoReport:
    summary: dict[str, Any]
    timing: dict[str, float]
    run: dict[str, str]
    unexpected: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """One object: everything but ``timing`` and ``run`` is the same for the same seed."""
        return {**self.summary, "timing": self.timing, "run": self.run}


def demo_sqlite_path(options: DemoOptions) -> Path:
    return options.var_dir / f"demo-{options.seed}-{options.orders}.db"


@dataclass
class DemoDatabase:
    """Where a run writes. A fresh file is built under a name of this run's own and moved
    into place when done, so two runs of the same seed and size never share one."""

    ledger: Ledger
    where: str
    building: Path | None = None  # the private file that becomes ``final``
    final: Path | None = None

    def publish(self) -> None:
        """After ``ledger.close()``: fold the WAL into the file, then swap it in atomically.
        A WAL or shared-memory file left beside the old file would be taken for the new
        one's, so they go first."""
        if self.building is None or self.final is None:
            return
        with closing(sqlite3.connect(self.building)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for stale in sqlite_companions(self.final):
            stale.unlink(missing_ok=True)
        self.building.replace(self.final)
        self.discard()

    def discard(self) -> None:
        """The private file's leftovers (all of it, if it was never published)."""
        if self.building is not None:
            for leftover in (self.building, *sqlite_companions(self.building)):
                leftover.unlink(missing_ok=True)


def sqlite_companions(path: Path) -> list[Path]:
    suffixes = ("-wal", "-shm", "-journal")
    return [path.with_name(path.name + suffix) for suffix in suffixes]


def open_demo_ledger(options: DemoOptions, clock: ManualClock) -> DemoDatabase:
    """A fresh SQLite file of this run's own, or the database the URL names."""
    given = options.database_url
    if given:
        url = (
            given
            if isinstance(given, StorageUrl)
            else StorageUrl.parse(given, setting="--database-url")
        )
        return DemoDatabase(open_ledger(url, clock=clock, policy=Policy()), url.where)
    final = demo_sqlite_path(options)
    building = final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}")
    ledger = open_ledger(StorageUrl.sqlite(building), clock=clock, policy=Policy())
    return DemoDatabase(ledger, f"SQLite {final} (fresh)", building, final)


def claim_run(
    ledger: Ledger, clock: ManualClock, options: DemoOptions
) -> tuple[Traffic, Step, CommandResult]:
    """The run id, claimed in the ledger itself: ``demo<seed>``, or ``demo<seed>r<n>`` for
    the first n whose claim succeeds. The claim is the run's first step (defining its
    marker promotion) run alone: its command id names the run id, so of two runs wanting
    one id exactly one writes it; the other finds a duplicate, or loses the race
    (``CONFLICT``, or ``COMMAND_ID_REUSED`` when its size differs), and tries the next id.
    Returns the traffic, the claiming step and its outcome."""
    for n in itertools.count(1):
        run_id = f"demo{options.seed}" if n == 1 else f"demo{options.seed}r{n}"
        marker = promotion_id(Traffic.active_promotion_no(run_id))
        if ledger.unit_of_work().get(Promotion, marker) is not None:
            continue  # taken earlier: no need to build its traffic
        traffic = Traffic(options.orders, options.seed, run_id)
        first = traffic.setup_steps()[0]
        clock.advance(first.at - clock.now())
        try:
            outcome = ledger.execute(first.command, first.at)
        except (Conflict, CommandIdReused):
            continue
        if not outcome.duplicate:
            return traffic, first, outcome
    raise AssertionError("unreachable")


def run_demo(options: DemoOptions) -> DemoReport:
    if not 1 <= options.orders <= MAX_ORDERS:
        raise InvalidCommand("--orders", f"must be a whole number from 1 to {MAX_ORDERS}")
    if options.batch_size < 1:
        raise InvalidCommand("--batch-size", "must be a whole number of at least 1")
    clock = ManualClock(START)
    database = open_demo_ledger(options, clock)
    ledger = database.ledger
    try:
        try:
            traffic, claim, claimed = claim_run(ledger, clock, options)
            log.info(
                "demo: %d orders, seed %d, run %s on %s",
                options.orders,
                options.seed,
                traffic.run_id,
                database.where,
            )
            steps = list(traffic.steps())
            tally = Tally()
            tally.record(claim, claimed)
            started = time.perf_counter()
            rest = [s for s in steps if s.command["command_id"] != claim.command["command_id"]]
            drive(ledger, clock, rest, tally, options)
            elapsed = time.perf_counter() - started
            summary = build_summary(ledger, traffic, tally, steps[0].at, steps[-1].at)
        finally:
            ledger.close()
        database.publish()
    finally:
        database.discard()
    timing = {
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(tally.events_written / elapsed, 1) if elapsed else 0.0,
        "commands_per_s": round(len(steps) / elapsed, 1) if elapsed else 0.0,
    }
    run = {"run_id": traffic.run_id, "database": database.where}
    return DemoReport(summary, timing, run, tally.unexpected)


def drive(
    ledger: Ledger, clock: ManualClock, steps: list[Step], tally: Tally, options: DemoOptions
) -> None:
    """Move the clock to each step and run the steps, a batch per transaction."""
    show = sys.stderr.isatty() if options.progress is None else options.progress
    with tqdm(
        total=len(steps),
        unit="cmd",
        desc="demo",
        file=sys.stderr,
        disable=not show,
        dynamic_ncols=True,
    ) as bar:
        for batch in batches(clock, steps, options.batch_size):
            if options.batch_size == 1:
                outcomes = [ledger.execute_or_error(batch[0].command, None, False, LOCAL_ACTOR)]
            else:
                outcomes = ledger.execute_batch([(step.command, step.at) for step in batch])
            for step, outcome in zip(batch, outcomes, strict=True):
                tally.record(step, outcome)
            bar.update(len(batch))


def batches(clock: ManualClock, steps: list[Step], size: int) -> Iterator[list[Step]]:
    """Runs of consecutive steps; the clock is advanced to each step as it is taken, so a
    batch of one runs at the clock's time and a larger batch carries the same times."""
    batch: list[Step] = []
    for step in steps:
        clock.advance(step.at - clock.now())
        batch.append(step)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
