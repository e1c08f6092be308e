"""`ledger demo`: a simulated stretch of mall traffic through the real ledger.

Where it writes:

- By default a fresh SQLite file ``var/demo-<seed>-<orders>.db`` (deleted and made again at
  the start), so the same seed and size always give the same summary.
- With ``--database-url`` or ``LEDGER_DATABASE_URL`` (PostgreSQL, or an explicit
  ``sqlite:///`` file) it writes into that database as it is, beside whatever is there.
  Every business key of the run starts with a run id, ``demo<seed>``; if an earlier run of
  the same seed is found there, the next free ``demo<seed>r2``, ``r3`` … is used. Nothing is
  deleted, so the counts are the same every run while the events table keeps growing.

Time is a ``ManualClock`` started at 2026-03-01 00:00 China time and moved forward step by
step; each command carries the clock's time. The demo runs under the DOMAIN.md section 9
policy defaults (not LEDGER_POLICY), since its story is timed against them.

The summary (ledger/demo/summary.py) is deterministic; ``DemoReport.timing`` (elapsed
time, rates) and ``DemoReport.run`` (database, run id) are not part of it.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tqdm import tqdm

from ledger.application import Ledger, open_ledger
from ledger.clock import ManualClock
from ledger.demo.summary import Tally, build_summary
from ledger.demo.traffic import START, Step, Traffic
from ledger.domain.errors import InvalidCommand
from ledger.domain.ids import promotion_id
from ledger.domain.policy import Policy
from ledger.domain.promotion import Promotion
from ledger.storage import is_postgres

log = logging.getLogger("ledger.demo")

DEFAULT_ORDERS = 200
DEFAULT_SEED = 1
DEFAULT_BATCH = 100  # larger batches cost more than they save (UnitOfWork.mark is per stream)


@dataclass(frozen=True)
class DemoOptions:
    orders: int = DEFAULT_ORDERS
    seed: int = DEFAULT_SEED
    database_url: str | None = None  # None: a fresh SQLite file under var_dir
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


def describe(database_url: str) -> str:
    """Where the demo writes, without user or password."""
    parts = urlsplit(database_url)
    if is_postgres(database_url):
        return f"PostgreSQL {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
    return f"SQLite {database_url.removeprefix('sqlite:///')}"


def open_demo_ledger(options: DemoOptions, clock: ManualClock) -> tuple[Ledger, str, bool]:
    """(ledger, where, shared): a fresh SQLite file, or the database the URL names."""
    url = options.database_url
    if url:
        if not url.startswith(("postgresql://", "postgres://", "sqlite:///")):
            raise InvalidCommand("--database-url", "must start with postgresql:// or sqlite:///")
        return open_ledger(url, clock=clock, policy=Policy()), describe(url), True
    path = demo_sqlite_path(options)
    for stale in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        stale.unlink(missing_ok=True)
    ledger = open_ledger(None, clock=clock, policy=Policy(), sqlite_path=path)
    return ledger, f"SQLite {path} (fresh)", False


def free_run_id(ledger: Ledger, seed: int) -> str:
    """``demo<seed>``, or ``demo<seed>r<n>`` for the first n whose set-up is not there yet."""
    for n in itertools.count(1):
        run_id = f"demo{seed}" if n == 1 else f"demo{seed}r{n}"
        marker = Traffic.active_promotion_no(run_id)
        if ledger.unit_of_work().get(Promotion, promotion_id(marker)) is None:
            return run_id
    raise AssertionError("unreachable")


def run_demo(options: DemoOptions) -> DemoReport:
    if options.orders < 1 or options.batch_size < 1:
        raise InvalidCommand("--orders", "orders and batch size must be positive")
    clock = ManualClock(START)
    ledger, where, shared = open_demo_ledger(options, clock)
    try:
        run_id = free_run_id(ledger, options.seed) if shared else f"demo{options.seed}"
        log.info(
            "demo: %d orders, seed %d, run %s on %s", options.orders, options.seed, run_id, where
        )
        traffic = Traffic(options.orders, options.seed, run_id)
        steps = list(traffic.steps())
        tally = Tally()
        started = time.perf_counter()
        drive(ledger, clock, steps, tally, options)
        elapsed = time.perf_counter() - started
        summary = build_summary(ledger, traffic, tally, steps[0].at, steps[-1].at)
    finally:
        ledger.close()
    timing = {
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(tally.events_written / elapsed, 1) if elapsed else 0.0,
        "commands_per_s": round(len(steps) / elapsed, 1) if elapsed else 0.0,
    }
    return DemoReport(summary, timing, {"run_id": run_id, "database": where}, tally.unexpected)


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
                outcomes = [ledger.execute_or_error(batch[0].command, None)]
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
