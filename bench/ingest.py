"""Ingest benchmark: events/s of the import path against a naive baseline and the physical limit.

    python -m bench.ingest [--orders N] [--batch-size B] [--seed S] [--profile TOP]

Runs on the PostgreSQL server of ``LEDGER_DATABASE_URL`` (default the local one), in scratch
databases ``bench_ingest_<pid>_*`` that it creates and drops. One deterministic workload is
written to a JSON-lines file: ``ledger.demo.traffic.generate_traffic`` (the demo's mall
traffic over every path of the agreement, some commands meant to be refused), which carries
Chinese personal data to seal. The file is then measured three ways:

- **ours**: ``ledger.importer.import_file`` on a fresh database, the real ``ledger import`` path:
  streaming, one transaction per ``--batch-size`` commands, every command parsed, checked by the
  rules, its personal data sealed, its idempotency record written.
- **baseline**: the same file through the same application used naively: ``Ledger.execute`` one
  command at a time, so one ``Application.save`` (one transaction) per command, with its streams
  read one by one. That is what a stock eventsourcing application does when it is handed
  commands in a loop; it does the same domain work as ours (same aggregates, same sealing, same
  idempotency records, same rows), so the difference is what the import path adds: batched
  transactions, streams read in bulk, sealing keys fetched per batch. A plain
  ``Application`` saving our aggregates without the command records or sealing would write
  other rows and do less work, which would not compare like with like.
- **limit**: the rows that *ours* stored (same topics, same state bytes, same order), read back
  and written with binary ``COPY`` into a fresh table of the library's shape (uuid, bigint,
  text, bytea, bigserial; same primary key and notification-id index), in one transaction; only
  the COPY and the commit are timed.

Events are counted the same way for all three: the stored event rows (``count(*)``), i.e. the
domain events plus one idempotency record per command. Times are wall-clock (perf_counter).
Progress goes to stderr; stdout gets one JSON object per line, the last being the results.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from bench.common import (
    CONNECT_TIMEOUT_S,
    checked_server,
    count_rows,
    emit,
    log,
    scratch_database,
    traffic,
    write_jsonl,
)
from cli.args import add_batch_size, int_range
from ledger.application import open_ledger
from ledger.domain.context import LOCAL_ACTOR
from ledger.domain.errors import LedgerError
from ledger.importer import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, import_file, parse_at
from ledger.storage import APPLICATION_NAME

BENCH = "ingest"
DEFAULT_ORDERS = 1000
MAX_ORDERS = 200_000
COPY_CHUNK_ROWS = 10_000
LIMIT_REPEATS = 3
TARGET_OURS_VS_LIMIT = 0.5
EVENTS_TABLE = f"{APPLICATION_NAME}_events"


@dataclass(frozen=True)
class Phase:
    name: str
    events: int
    seconds: float
    rejected: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def record(self) -> dict[str, Any]:
        return {
            "bench": BENCH,
            "phase": self.name,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.rate, 1),
            "rejected": self.rejected,
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--orders",
        type=int_range(1, MAX_ORDERS),
        default=DEFAULT_ORDERS,
        help=f"orders in the workload, a few commands each (default {DEFAULT_ORDERS})",
    )
    add_batch_size(parser, what="commands", high=MAX_BATCH_SIZE, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    parser.add_argument(
        "--profile",
        type=int_range(0, 200),
        default=0,
        metavar="TOP",
        help="also import once under cProfile and report the TOP hot spots",
    )
    parser.add_argument(
        "--skip-baseline", action="store_true", help="leave the (slow) baseline out"
    )
    return parser.parse_args(argv)


def workload_lines(path: Path) -> Iterator[tuple[dict[str, Any], Any]]:
    """(command, at) from the workload file, as the importer would read them."""
    with path.open("rb") as stream:
        for line in stream:
            obj = orjson.loads(line)
            at = parse_at(obj.pop("at"))
            yield obj, at


def run_ours(url: str, workload: Path, batch_size: int) -> Phase:
    ledger = open_ledger(url)
    try:
        report = import_file(ledger, workload, batch_size, workload.with_suffix(".rejects"))
    finally:
        ledger.close()
    events = count_rows(url, EVENTS_TABLE)
    if events != report.events_written:
        log(f"warning: importer counted {report.events_written} events, table has {events}")
    return Phase("ours", events, report.elapsed_s, report.rejected)


def run_baseline(url: str, workload: Path) -> Phase:
    ledger = open_ledger(url)
    rejected = 0
    try:
        started = time.perf_counter()
        for command, at in workload_lines(workload):
            # As the import runs each command (its refusals recorded), one save per command.
            outcome = ledger.execute_or_error(command, at, True, LOCAL_ACTOR)
            rejected += isinstance(outcome, LedgerError)
        seconds = time.perf_counter() - started
    finally:
        ledger.close()
    return Phase("baseline", count_rows(url, EVENTS_TABLE), seconds, rejected)


def create_events_table(conn: psycopg.Connection[Any]) -> None:
    """A fresh copy of the library's events table (eventsourcing.postgres,
    PostgresApplicationRecorder): same columns, primary key and notification-id index."""
    table = sql.Identifier(EVENTS_TABLE)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (originator_id uuid NOT NULL, originator_version bigint NOT NULL,"
            " topic text, state bytea, notification_id bigserial,"
            " PRIMARY KEY (originator_id, originator_version))"
        ).format(table)
    )
    conn.execute(
        sql.SQL("CREATE UNIQUE INDEX {} ON {} (notification_id ASC)").format(
            sql.Identifier(f"{EVENTS_TABLE}_notification_id_idx"), table
        )
    )
    conn.commit()


_COLUMNS = sql.SQL("originator_id, originator_version, topic, state")
_SELECT_ROWS = sql.SQL("SELECT {} FROM {} ORDER BY notification_id").format(
    _COLUMNS, sql.Identifier(EVENTS_TABLE)
)
_COPY_IN = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
    sql.Identifier(EVENTS_TABLE), _COLUMNS
)


def copy_once(source: psycopg.Connection[Any], target: psycopg.Connection[Any]) -> float:
    """Seconds to COPY every stored row into a fresh table and commit. Rows are read back in
    chunks (memory bounded), outside the timed part."""
    create_events_table(target)
    seconds = 0.0
    with source.cursor(name="bench_ingest_rows") as rows:
        rows.execute(_SELECT_ROWS)
        while chunk := rows.fetchmany(COPY_CHUNK_ROWS):
            started = time.perf_counter()
            with target.cursor() as cur, cur.copy(_COPY_IN) as copy:
                copy.set_types(["uuid", "int8", "text", "bytea"])
                for row in chunk:
                    copy.write_row(row)
            seconds += time.perf_counter() - started
    source.rollback()  # end the read transaction (the named cursor's)
    started = time.perf_counter()
    target.commit()
    return seconds + time.perf_counter() - started


def run_limit(source_url: str, target_url: str) -> Phase:
    """Binary COPY of the rows ``ours`` stored; the median of ``LIMIT_REPEATS`` runs (one run
    of a few thousand rows takes milliseconds, so a single one is noisy)."""
    with (
        psycopg.connect(source_url, connect_timeout=CONNECT_TIMEOUT_S) as source,
        psycopg.connect(target_url, connect_timeout=CONNECT_TIMEOUT_S) as target,
    ):
        runs = [copy_once(source, target) for _ in range(LIMIT_REPEATS)]
    return Phase("limit", count_rows(target_url, EVENTS_TABLE), statistics.median(runs))


def run_profile(url: str, workload: Path, batch_size: int, top: int) -> dict[str, Any]:
    """Import once more under cProfile (slower than the measured run: figures are shares)."""
    ledger = open_ledger(url)
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        import_file(ledger, workload, batch_size, workload.with_suffix(".profile-rejects"))
        profiler.disable()
    finally:
        ledger.close()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
    rows = []
    for (filename, line, function), entry in stats.stats.items():  # type: ignore[attr-defined]
        calls, tottime, cumtime = entry[1], entry[2], entry[3]
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({function})",
                "calls": calls,
                "tottime_share": round(tottime / total, 4),
                "cumtime_share": round(cumtime / total, 4),
            }
        )
    rows.sort(key=lambda r: r["tottime_share"], reverse=True)
    for row in rows[:top]:
        log(
            f"  {row['tottime_share']:6.1%} self {row['cumtime_share']:6.1%} cum  {row['function']}"
        )
    return {"bench": BENCH, "phase": "profile", "total_s": round(total, 3), "top": rows[:top]}


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def results(
    args: argparse.Namespace, phases: dict[str, Phase], extra: dict[str, Any]
) -> dict[str, Any]:
    ours, limit = phases["ours"], phases["limit"]
    baseline = phases.get("baseline")
    record: dict[str, Any] = {"bench": BENCH, "ours": round(ours.rate, 1)}
    if baseline is not None:
        record["baseline"] = round(baseline.rate, 1)
    record.update({"limit": round(limit.rate, 1), "unit": "events/s"})
    record["ours_vs_limit"] = round(ours.rate / limit.rate, 4) if limit.rate else None
    if baseline is not None:
        record["ours_vs_baseline"] = round(ours.rate / baseline.rate, 2) if baseline.rate else None
    record.update(
        {
            "events": ours.events,
            "target_ours_vs_limit": TARGET_OURS_VS_LIMIT,
            "meets_target": bool(limit.rate) and ours.rate / limit.rate >= TARGET_OURS_VS_LIMIT,
            "seconds": {name: round(p.seconds, 3) for name, p in phases.items()},
            "orders": args.orders,
            "batch_size": args.batch_size,
            "seed": args.seed,
            **extra,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )
    return record


def measure(args: argparse.Namespace, server: str, tmp: Path) -> dict[str, Any]:
    """Write the workload, run the phases in scratch databases (dropped on the way out)."""
    workload = tmp / "workload.jsonl"
    commands, source = traffic(args.orders, args.seed)
    lines, size = write_jsonl(workload, commands)
    extra = {"commands": lines, "workload_bytes": size, "workload": source}
    emit({"bench": BENCH, "phase": "workload", **extra})
    log(f"workload: {args.orders} orders, {lines} commands, {size} bytes ({source})")
    phases: dict[str, Phase] = {}
    prefix = f"bench_ingest_{os.getpid()}"
    with ExitStack() as scratch:
        ours_url = scratch.enter_context(scratch_database(server, f"{prefix}_ours"))
        log(f"ours: import, batches of {args.batch_size} ...")
        phases["ours"] = _report(run_ours(ours_url, workload, args.batch_size))
        if not args.skip_baseline:
            base_url = scratch.enter_context(scratch_database(server, f"{prefix}_baseline"))
            log("baseline: one command per transaction ...")
            phases["baseline"] = _report(run_baseline(base_url, workload))
        limit_url = scratch.enter_context(scratch_database(server, f"{prefix}_limit"))
        log("limit: binary COPY of the same rows ...")
        phases["limit"] = _report(run_limit(ours_url, limit_url))
        if args.profile:
            prof_url = scratch.enter_context(scratch_database(server, f"{prefix}_profile"))
            log(f"profile: import under cProfile, top {args.profile} by own time")
            emit(run_profile(prof_url, workload, args.batch_size, args.profile))
    return results(args, phases, _checks(phases, extra))


def _report(phase: Phase) -> Phase:
    log(f"{phase.name}: {phase.events} events in {phase.seconds:.2f} s = {phase.rate:.0f} events/s")
    emit(phase.record())
    return phase


def _checks(phases: dict[str, Phase], extra: dict[str, Any]) -> dict[str, Any]:
    """Ours and the baseline ran the same commands: they must have refused the same ones
    (the demo traffic has commands meant to be refused) and stored the same rows."""
    ours, baseline, limit = phases["ours"], phases.get("baseline"), phases["limit"]
    problems = []
    if baseline is not None and baseline.rejected != ours.rejected:
        problems.append(f"refusals differ: ours {ours.rejected}, baseline {baseline.rejected}")
    if baseline is not None and baseline.events != ours.events:
        problems.append(f"rows differ: ours {ours.events}, baseline {baseline.events}")
    if limit.events != ours.events:
        problems.append(f"rows differ: ours {ours.events}, limit {limit.events}")
    for problem in problems:
        log(f"warning: {problem}")
    return {**extra, "rejected": ours.rejected, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = checked_server()
    if server is None:
        return 2
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        record = measure(args, server, Path(tmp))
    emit(record)
    return 1 if record["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
