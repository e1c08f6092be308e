"""Rebuild benchmark: events/s of ``ledger projections rebuild`` against a baseline and a limit.

    python -m bench.rebuild [--orders N] [--seed S] [--baseline-events N] [--batch-size B]
                            [--repeat R]

Runs on the PostgreSQL server of ``LEDGER_DATABASE_URL`` (default the local one) in a scratch
database ``bench_rebuild_<pid>`` it creates and drops. The log is the demo's mall traffic
(``ledger.demo.traffic.generate_traffic``)
written through the import path, about 13 events per order: the default 15000 orders give
the 200k+ events the figure is defined on (200,441), in about three minutes on two cores;
``--orders 60000`` gives 800k. Three ways of reading the same log, each in a fresh child
process (so its peak memory is its own):

- **ours**: ``ledger projections rebuild`` of all six projections (``cli.projections``): fresh
  tables, batched application, secondary indexes at the end, atomic swap; the projections
  split between processes, one per core (its default ``--jobs``). Also reported, as
  ``ours_one_process``: the same with ``--jobs 1``, since the limit reads in one process.
- **baseline**: the stock ``eventsourcing`` ``ProjectionRunner`` applying the same handlers to
  the same tables, one event per transaction (the library's ``Projection`` pattern: a view
  that is a ``PostgresTrackingRecorder``, view rows and tracking record in one commit). It is
  slow, so it runs on the first ``--baseline-events`` positions of the log.
- **limit**: a raw ``SELECT`` of the whole events table (server-side cursor, binary) with every
  state decoded by ``orjson``: reading the log, with no projection work at all.

All count log positions covered per second. Ours (both ways) and the limit run ``--repeat``
times each on the whole log, interleaved, and the run of median time counts; every run's rate
is in the result too, since this machine is shared and noisy. Ours also runs on the first half
of the log, to show its peak memory does not grow with the log (``peak_rss_mb``: the rebuild
process's peak plus each of its building processes' peaks). Progress goes to
stderr; stdout gets one JSON object per line, the last being the results.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection as LibraryProjection
from eventsourcing.projection import ProjectionRunner
from psycopg.rows import tuple_row

from bench.common import (
    DEFAULT_SERVER_URL,
    EVENTS_TABLE,
    emit,
    log,
    rate,
    redacted,
    run_child,
    scratch_database,
    server_problem,
    split_workload,
    write_log,
)
from ledger.application import LedgerApplication
from ledger.library.settings import library_env
from ledger.storage_url import StorageUrl
from projections.batch import Batch
from projections.db_postgres import PgDb
from projections.engine import Target, create_tables
from projections.events import Event
from projections.parallel import DEFAULT_JOBS, peak_rss_mb
from projections.registry import PROJECTIONS
from projections.schema import CHECK

BENCH = "rebuild"
DEFAULT_ORDERS = 15_000
MAX_ORDERS = 100_000
DEFAULT_BASELINE_EVENTS = 15_000
BASELINE_TIMEOUT_S = 120.0
TARGET_VS_BASELINE = 10.0
TARGET_VS_LIMIT = 0.25

CHILD_TIMEOUT_S = 900
DEFAULT_REPEAT = 3
MAX_REPEAT = 9


# -- the three phases, each run in a child process ------------------------------------------


def phase_ours(url: str, batch: int, jobs: int = DEFAULT_JOBS) -> dict[str, Any]:
    from cli.projections import main

    os.environ["LEDGER_DATABASE_URL"] = url
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(
            ["rebuild", "--no-progress", "--json", "--batch-size", str(batch)]
            + ["--jobs", str(jobs)]
        )
    seconds = time.perf_counter() - started
    assert code == 0, f"rebuild exited {code}"
    report = orjson.loads(out.getvalue().strip().splitlines()[-1])
    workers = report["worker_peak_rss_mb"]
    # The processes run at once: the memory they hold together is at most the sum of peaks.
    return {
        "seconds": seconds,
        "jobs": report["jobs"],
        "peak_rss_mb": round(peak_rss_mb() + sum(workers), 1),
        "worker_peak_rss_mb": workers,
    }


def phase_ours_one_process(url: str, batch: int) -> dict[str, Any]:
    return phase_ours(url, batch, jobs=1)


def phase_limit(url: str, batch: int) -> dict[str, Any]:
    started = time.perf_counter()
    rows = 0
    with psycopg.connect(url) as conn, conn.cursor(name="bench_limit") as cur:
        cur.itersize = batch
        cur.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {EVENTS_TABLE} ORDER BY notification_id",
            binary=True,
        )
        for row in cur:
            orjson.loads(row[4])
            rows += 1
    return {"seconds": time.perf_counter() - started, "rows": rows, "peak_rss_mb": peak_rss_mb()}


class BaselineView(PostgresTrackingRecorder):
    """The library's projection pattern: a tracking recorder that is also the view. Each
    event: one transaction with our handlers' rows and the tracking record."""

    db: PgDb | None = None  # our SQL helpers and conversions; set before the runner starts

    def apply(self, event: Event, tracking: Tracking) -> None:
        assert self.db is not None
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=tuple_row) as cur,
        ):
            for projection in PROJECTIONS:
                if event.topic in projection.handlers:
                    batch = Batch(self.db, cur, projection.tables, CHECK)
                    projection.load([event], batch)
                    projection.apply([event], batch)
                    batch.flush()
            self._insert_tracking(cur, tracking)  # type: ignore[arg-type]


class BaselineProjection(LibraryProjection[BaselineView]):
    name = "bench_baseline"
    topics = tuple(sorted({t for p in PROJECTIONS for t in p.handlers}))

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        event = Event(
            tracking.notification_id,
            str(type(domain_event).TOPIC),
            str(domain_event.originator_id),
            domain_event.originator_version,
            domain_event.timestamp,
            dict(vars(domain_event)),
        )
        self.view.apply(event, tracking)


def phase_baseline(url: str, stop_at: int) -> dict[str, Any]:
    db = PgDb(StorageUrl.parse(url))
    with db.write() as cur:
        for projection in PROJECTIONS:
            create_tables(db, cur, Target(projection, CHECK), "bl", indexes=True)
    BaselineView.db = db
    started = time.perf_counter()
    with ProjectionRunner(
        application_class=LedgerApplication,
        projection_class=BaselineProjection,
        view_class=BaselineView,
        env=library_env(StorageUrl.parse(url)),
    ) as runner:
        with contextlib.suppress(TimeoutError):  # slower than the cap: take what it reached
            runner.wait(stop_at, timeout=BASELINE_TIMEOUT_S)
        seconds = time.perf_counter() - started
        reached = runner.view.max_tracking_id("ledger") or 0
    db.close()
    return {"seconds": seconds, "position": reached, "peak_rss_mb": peak_rss_mb()}


PHASES = {
    "ours": phase_ours,
    "ours_one_process": phase_ours_one_process,
    "limit": phase_limit,
    "baseline": phase_baseline,
}


# -- the parent: the log, the phases, the results -------------------------------------------


def run_phase(phase: str, url: str, arg: int, events: int) -> dict[str, Any]:
    """One phase in a child process; its figures go out as a JSON line and a log line."""
    found = run_child("bench.rebuild", phase, url, str(arg), timeout_s=CHILD_TIMEOUT_S)
    covered = found.get("position", events)
    emit({"bench": BENCH, "phase": phase, "events": covered, **found})
    log(f"{phase} on {covered} events: {rate(covered, found['seconds'])} events/s")
    return {**found, "events": covered}


def repeated(
    names: tuple[str, ...], url: str, args: argparse.Namespace, events: int
) -> dict[str, dict[str, Any]]:
    """Each phase ``args.repeat`` times, interleaved (so a change in the machine's load falls
    on all of them alike); per phase the run of median time, with every run's rate."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(args.repeat):
        for name in names:
            runs[name].append(run_phase(name, url, args.batch_size, events))
    chosen = {}
    for name, found in runs.items():
        by_time = sorted(found, key=lambda r: r["seconds"])
        chosen[name] = {
            **by_time[len(by_time) // 2],
            "runs": [rate(r["events"], r["seconds"]) for r in found],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in found),
        }
    return chosen


def measure(args: argparse.Namespace, server: str, tmp: Path) -> dict[str, Any]:
    first, second, source = split_workload(args.orders, args.seed, tmp)
    with scratch_database(server, f"bench_rebuild_{os.getpid()}") as url:
        log(f"writing the first half of the log ({source}) ...")
        events_half = write_log(url, first, tmp)
        phases = {"ours_half_log": run_phase("ours", url, args.batch_size, events_half)}
        log("writing the second half ...")
        events = write_log(url, second, tmp)
        phases.update(repeated(("ours", "ours_one_process", "limit"), url, args, events))
        stop_at = min(events, args.baseline_events)
        phases["baseline"] = run_phase("baseline", url, stop_at, events)
    return results(args, source, phases)


def results(
    args: argparse.Namespace, source: str, phases: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    rates = {name: rate(p["events"], p["seconds"]) for name, p in phases.items()}
    ours, one, limit, base = (
        rates["ours"],
        rates["ours_one_process"],
        rates["limit"],
        rates["baseline"],
    )
    vs_base = round(ours / base, 2) if base else None
    vs_limit = round(ours / limit, 3) if limit else None
    return {
        "bench": BENCH,
        "ours": ours,
        "baseline": base,
        "limit": limit,
        "unit": "events/s",
        "events": phases["ours"]["events"],
        "orders": args.orders,
        "jobs": phases["ours"]["jobs"],
        "peak_rss_mb": phases["ours"]["peak_rss_mb"],
        "peak_rss_mb_half_log": phases["ours_half_log"]["peak_rss_mb"],
        "events_half_log": phases["ours_half_log"]["events"],
        "baseline_events": phases["baseline"]["events"],
        "ours_vs_baseline": vs_base,
        "ours_vs_limit": vs_limit,
        "ours_one_process": one,
        "ours_one_process_vs_limit": round(one / limit, 3) if limit else None,
        "repeat": args.repeat,
        "runs": {name: phases[name]["runs"] for name in ("ours", "ours_one_process", "limit")},
        "targets_met": bool(
            vs_base and vs_limit and vs_base >= TARGET_VS_BASELINE and vs_limit >= TARGET_VS_LIMIT
        ),
        "batch_size": args.batch_size,
        "workload": source,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.rebuild", description=__doc__)
    parser.add_argument(
        "--orders",
        type=int,
        default=DEFAULT_ORDERS,
        help=f"orders in the log, ~13 events each (default {DEFAULT_ORDERS})",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--baseline-events",
        type=int,
        default=DEFAULT_BASELINE_EVENTS,
        help="log positions the slow baseline runs over",
    )
    parser.add_argument("--batch-size", type=int, default=20_000, help="events per batch (ours)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=DEFAULT_REPEAT,
        help=f"runs of ours and the limit on the whole log; the median counts (1..{MAX_REPEAT})",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.child and not 1 <= args.orders <= MAX_ORDERS:
        parser.error(f"--orders must be between 1 and {MAX_ORDERS}")
    if not 1 <= args.repeat <= MAX_REPEAT:
        parser.error(f"--repeat must be between 1 and {MAX_REPEAT}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        phase, url, arg = args.child
        print(orjson.dumps(PHASES[phase](url, int(arg))).decode())
        return 0
    configured = os.environ.get("LEDGER_DATABASE_URL")
    server = configured if StorageUrl.parse(configured).is_postgres else DEFAULT_SERVER_URL
    assert server is not None
    problem = server_problem(server)
    if problem:
        log(f"PostgreSQL not reachable at {redacted(server)}: {problem}")
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-rebuild-") as tmp:
        emit(measure(args, server, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
