"""Export benchmark: records/s of a regulator's export against the physical limit.

    python -m bench.export [--orders N] [--seed S] [--repeat R]

Runs on the PostgreSQL server of ``LEDGER_DATABASE_URL`` (default the local one) in a scratch
database ``bench_export_<pid>`` it creates and drops. The log is the demo's mall traffic
written through the import path (about 13 events per order), then sealed.

- **ours**: ``replay.export.write_export`` of a request whose scope is every order, without
  personal data, in a child process: the pass over the log, every event row with its
  inclusion proof, the record files and their CSV, the manifest and its signature, the bag's
  checksums. Records are the event rows exported (``events.jsonl``'s lines).
- **limit**: ``COPY (SELECT … FROM ledger_events …) TO STDOUT`` of the same rows (binary),
  read to the end: the database handing over the rows, nothing else.

Each runs ``--repeat`` times, interleaved; the run of median time counts. Target: ours >= 0.25x
the limit. Progress goes to stderr; stdout gets one JSON object per line, the last the results.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.common import (
    EVENTS_TABLE,
    bench_main,
    bench_parser,
    checked_args,
    emit,
    log,
    rate,
    run_child,
    scratch_database,
    split_workload,
    write_log,
)
from ledger.files import create_new
from projections.parallel import peak_rss_mb

BENCH = "export"
ORIGIN = "bench.mall-ledger.local/log"
DEFAULT_ORDERS, MAX_ORDERS = 5_000, 200_000
DEFAULT_REPEAT, MAX_REPEAT = 3, 9
CHILD_TIMEOUT_S = 1800
TARGET_VS_LIMIT = 0.25


def phase_ours(url: str, args: str) -> dict[str, Any]:
    from ledger.application import open_ledger
    from ledger.domain.context import LOCAL_ACTOR
    from projections.engine import open_runtime
    from replay.export import write_export
    from replay.signed_note import Signer

    request_id, key_path, out = args.split("\n")
    key_text = Path(key_path).read_text()
    ledger, rt = open_ledger(url, create=False), open_runtime(url, create=False)
    try:
        started = time.perf_counter()
        report = write_export(ledger, rt, request_id, Path(out), Signer.parse(key_text),
                              LOCAL_ACTOR)  # fmt: skip
        seconds = time.perf_counter() - started
    finally:
        rt.close()
        ledger.close()
    shutil.rmtree(out)
    return {"seconds": seconds, "records": report.counts["events"], "peak_rss_mb": peak_rss_mb()}


def phase_limit(url: str, args: str) -> dict[str, Any]:
    last = int(args)
    started, size = time.perf_counter(), 0
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        query = (
            f"COPY (SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {EVENTS_TABLE} WHERE notification_id <= {last} ORDER BY notification_id) "
            "TO STDOUT (FORMAT binary)"
        )
        with cur.copy(query) as copy:
            for block in copy:
                size += len(block)
    return {"seconds": time.perf_counter() - started, "bytes": size, "peak_rss_mb": peak_rss_mb()}


PHASES = {"ours": phase_ours, "limit": phase_limit}


def prepare(url: str, tmp: Path, args: argparse.Namespace) -> tuple[str, str, int]:
    """The log written and sealed, a request for all of it: (request id, the signing key's
    file, the last position sealed)."""
    from ledger.application import open_ledger
    from ledger.domain.context import LOCAL_ACTOR
    from ledger.domain.export_request import ExportScope
    from projections.engine import open_runtime
    from replay.export import request_export
    from replay.seal import seal
    from replay.signed_note import Signer

    first, second, _ = split_workload(args.orders, args.seed, tmp)
    write_log(url, first, tmp)
    write_log(url, second, tmp)
    signer = Signer.generate(ORIGIN)
    ledger, rt = open_ledger(url), open_runtime(url)
    try:
        report = seal(ledger, rt, signer, None, LOCAL_ACTOR)
        request_id = request_export(ledger, LOCAL_ACTOR, "bench", "BENCH-1", "ECL 25",
                                    ExportScope(), False)  # fmt: skip
    finally:
        rt.close()
        ledger.close()
    log(f"sealed {report.size} events")
    key_path = tmp / "signing.key"  # the child signs with it; never on a command line
    with create_new(key_path) as out:
        out.write(signer.text().encode())
    return request_id, str(key_path), report.last_position


def measure(args: argparse.Namespace, server: str, tmp: Path) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "limit": []}
    with scratch_database(server, f"bench_export_{os.getpid()}") as url:
        request_id, key_path, last = prepare(url, tmp, args)
        for number in range(args.repeat):
            out = tmp / f"bag{number}"
            for name, arg in (("ours", f"{request_id}\n{key_path}\n{out}"), ("limit", str(last))):
                found = run_child("bench.export", name, url, arg, timeout_s=CHILD_TIMEOUT_S)
                emit({"bench": BENCH, "phase": name, **found})
                runs[name].append(found)
    ours = sorted(runs["ours"], key=lambda r: r["seconds"])[args.repeat // 2]
    limit = sorted(runs["limit"], key=lambda r: r["seconds"])[args.repeat // 2]
    records = ours["records"]
    ours_rate, limit_rate = rate(records, ours["seconds"]), rate(records, limit["seconds"])
    vs_limit = round(ours_rate / limit_rate, 3) if limit_rate else None
    log(f"ours {ours_rate} records/s, limit {limit_rate}")
    return {
        "bench": BENCH,
        "ours": ours_rate,
        "limit": limit_rate,
        "unit": "records/s",
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs["ours"]),
        "records": records,
        "ours_vs_limit": vs_limit,
        "runs": {n: [rate(records, r["seconds"]) for r in found] for n, found in runs.items()},
        "repeat": args.repeat,
        "orders": args.orders,
        "targets_met": bool(vs_limit and vs_limit >= TARGET_VS_LIMIT),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser("python -m bench.export", __doc__, DEFAULT_ORDERS, DEFAULT_REPEAT,
                          MAX_REPEAT)  # fmt: skip
    return checked_args(parser, argv, MAX_ORDERS, MAX_REPEAT)


def main(argv: list[str] | None = None) -> int:
    return bench_main(parse_args(argv), PHASES, measure, BENCH)


if __name__ == "__main__":
    sys.exit(main())
