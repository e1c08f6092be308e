"""Verification benchmark: events/s of ``ledger verify`` against the physical limit, and what
a seal costs at two log sizes.

    python -m bench.verify [--orders N] [--seed S] [--extra-orders M] [--steps K] [--repeat R]

Runs on the PostgreSQL server of ``LEDGER_DATABASE_URL`` (default the local one) in a scratch
database ``bench_verify_<pid>`` it creates and drops. The log is the demo's mall traffic
written through the import path (about 16 event rows per order), in ``--steps`` parts
(default 2), each the traffic of its share of the orders under a seed of its own
(``bench.common.traffic_parts``): ``--orders 62500 --steps 10`` grows the log by about 100k
rows at a time to 1M.

- **ours**: ``replay.verify.verify`` over the whole log in a child process: every row read,
  its leaf hashed into the tree and compared with the stored tiles, every checkpoint checked.
- **limit**: hashlib SHA-256 over the same bytes (``replay.leaves.row_bytes`` of every row),
  read the same way: reading and hashing, with nothing of the tree.
- **seal cost**: after the first part and after the last, ``--extra-orders`` more orders are
  imported and sealed, timed: the same number of new events at a log of the first part's size
  and of full size (``seal_at_first_size``, ``seal_at_full_log``). A seal that rescanned the
  log would take as much longer as the log is larger; ours costs O(new + log n).
- **memory**: ``ours`` also runs after each part; its peak RSS should not grow with the log
  (``sizes``: rows, peak RSS and events/s after each part).

Ours and the limit run ``--repeat`` times each, interleaved; the run of median time counts,
every run's rate is in the result (the machine is shared and noisy). Target: ours >= 0.5x the
limit. Progress goes to stderr; stdout gets one JSON object per line, the last the results.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    bench_main,
    bench_parser,
    checked_args,
    emit,
    log,
    rate,
    run_child,
    scratch_database,
    traffic,
    traffic_parts,
    write_jsonl,
    write_log,
)
from projections.parallel import peak_rss_mb

BENCH = "verify"
ORIGIN = "bench.mall-ledger.local/log"
DEFAULT_ORDERS, MAX_ORDERS = 15_000, 200_000
DEFAULT_EXTRA_ORDERS = 200
DEFAULT_STEPS, MAX_STEPS = 2, 20
DEFAULT_REPEAT, MAX_REPEAT = 3, 9
CHILD_TIMEOUT_S = 1800
TARGET_VS_LIMIT = 0.5
PAGE_ROWS = 10_000


# -- the phases, each run in a child process -------------------------------------------------


def phase_ours(url: str, vkey: str) -> dict[str, Any]:
    from projections.engine import open_runtime
    from replay.signed_note import Verifier
    from replay.verify import verify

    rt = open_runtime(url, create=False)
    try:
        started = time.perf_counter()
        report = verify(rt, [Verifier.parse(vkey)], ORIGIN)
        seconds = time.perf_counter() - started
    finally:
        rt.close()
    assert report.intact, report.as_dict()
    return {"seconds": seconds, "rows": report.rows, "peak_rss_mb": peak_rss_mb()}


def phase_limit(url: str, _vkey: str) -> dict[str, Any]:
    from projections.engine import open_runtime
    from replay.leaves import row_bytes

    rt = open_runtime(url, create=False)
    rows, after = 0, 0
    try:
        started = time.perf_counter()
        with rt.db.snapshot() as cur:
            while True:
                page = rt.db.fetch_rows(cur, after, PAGE_ROWS, None)
                for row in page:
                    hashlib.sha256(b"\x00" + row_bytes(row)).digest()
                rows += len(page)
                if len(page) < PAGE_ROWS:
                    break
                after = page[-1].position
        seconds = time.perf_counter() - started
    finally:
        rt.close()
    return {"seconds": seconds, "rows": rows, "peak_rss_mb": peak_rss_mb()}


PHASES = {"ours": phase_ours, "limit": phase_limit}


# -- the parent ------------------------------------------------------------------------------


def timed_seal(url: str, key_text: str) -> tuple[float, int, int]:
    """Seal the log; (seconds, events appended, tree size)."""
    from ledger.application import open_ledger
    from ledger.domain.context import LOCAL_ACTOR
    from projections.engine import open_runtime
    from replay.seal import seal
    from replay.signed_note import Signer

    ledger, rt = open_ledger(url), open_runtime(url)
    try:
        started = time.perf_counter()
        report = seal(ledger, rt, Signer.parse(key_text), None, LOCAL_ACTOR)
        return time.perf_counter() - started, report.appended, report.size
    finally:
        rt.close()
        ledger.close()


def grow_and_seal(url: str, key_text: str, extra: Path, tmp: Path) -> dict[str, Any]:
    """Seal what is there, then import ``extra`` and time the seal of just those events."""
    timed_seal(url, key_text)
    write_log(url, extra, tmp)
    seconds, appended, size = timed_seal(url, key_text)
    log(f"sealed {appended} new events at a log of {size}: {seconds:.3f}s")
    return {"seal_s": round(seconds, 4), "appended": appended, "size": size}


def run_phase(phase: str, url: str, vkey: str) -> dict[str, Any]:
    """One phase in a child process (given the public key only)."""
    found = run_child("bench.verify", phase, url, vkey, timeout_s=CHILD_TIMEOUT_S)
    emit({"bench": BENCH, "phase": phase, **found})
    log(f"{phase} on {found['rows']} events: {rate(found['rows'], found['seconds'])} events/s")
    return found


def extras(args: argparse.Namespace, tmp: Path) -> tuple[Path, Path]:
    """Two equal batches of new orders (other seeds, so other order numbers)."""
    made = []
    for n in (1, 2):
        commands, _ = traffic(args.extra_orders, args.seed + 1000 * n)
        path = tmp / f"extra{n}.jsonl"
        write_jsonl(path, commands)
        made.append(path)
    return made[0], made[1]


def measure(args: argparse.Namespace, server: str, tmp: Path) -> dict[str, Any]:
    from replay.signed_note import Signer

    signer = Signer.generate(ORIGIN)
    key_text, vkey = signer.text(), signer.verifier().text()
    parts, source = traffic_parts(args.orders, args.seed, tmp, args.steps)
    extra_first, extra_full = extras(args, tmp)
    sizes: list[dict[str, Any]] = []
    seals: list[dict[str, Any]] = []
    with scratch_database(server, f"bench_verify_{os.getpid()}") as url:
        for number, part in enumerate(parts):
            write_log(url, part, tmp)
            if number in (0, len(parts) - 1):
                seals.append(
                    grow_and_seal(url, key_text, (extra_first, extra_full)[len(seals)], tmp)
                )
            else:
                timed_seal(url, key_text)
            if number < len(parts) - 1:
                sizes.append(size_point(run_phase("ours", url, vkey)))
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "limit": []}
        for _ in range(args.repeat):
            for name in runs:
                runs[name].append(run_phase(name, url, vkey))
    sizes.append(size_point(median(runs["ours"])))
    return results(args, source, runs, sizes, (seals[0], seals[-1]))


def size_point(found: dict[str, Any]) -> dict[str, Any]:
    """One size of the growing log: its rows, ours' peak memory and rate there."""
    rows = found["rows"]
    return {"events": rows, "peak_rss_mb": found["peak_rss_mb"],
            "events_per_s": rate(rows, found["seconds"])}  # fmt: skip


def median(found: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(found, key=lambda r: r["seconds"])[len(found) // 2]


def results(
    args: argparse.Namespace,
    source: str,
    runs: dict[str, list[dict[str, Any]]],
    sizes: list[dict[str, Any]],
    seals: tuple[dict[str, Any], dict[str, Any]],
) -> dict[str, Any]:
    ours, limit = median(runs["ours"]), median(runs["limit"])
    ours_rate, limit_rate = (
        rate(ours["rows"], ours["seconds"]),
        rate(limit["rows"], limit["seconds"]),
    )
    vs_limit = round(ours_rate / limit_rate, 3) if limit_rate else None
    return {
        "bench": BENCH,
        "ours": ours_rate,
        "limit": limit_rate,
        "unit": "events/s",
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs["ours"]),
        "events": ours["rows"],
        "sizes": sizes,
        "ours_vs_limit": vs_limit,
        "seal_at_first_size": seals[0],
        "seal_at_full_log": seals[1],
        "runs": {
            name: [rate(r["rows"], r["seconds"]) for r in found] for name, found in runs.items()
        },
        "repeat": args.repeat,
        "orders": args.orders,
        "steps": args.steps,
        "targets_met": bool(vs_limit and vs_limit >= TARGET_VS_LIMIT),
        "workload": source,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser("python -m bench.verify", __doc__, DEFAULT_ORDERS, DEFAULT_REPEAT,
                          MAX_REPEAT)  # fmt: skip
    parser.add_argument(
        "--extra-orders",
        type=int,
        default=DEFAULT_EXTRA_ORDERS,
        help="orders added before each timed seal",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help=f"parts the log grows by, ours run after each (2..{MAX_STEPS})",
    )
    args = checked_args(parser, argv, MAX_ORDERS, MAX_REPEAT)
    if not 2 <= args.steps <= MAX_STEPS:
        parser.error(f"--steps must be between 2 and {MAX_STEPS}")
    if not 1 <= args.extra_orders <= MAX_ORDERS:
        parser.error(f"--extra-orders must be between 1 and {MAX_ORDERS}")
    return args


def main(argv: list[str] | None = None) -> int:
    return bench_main(parse_args(argv), PHASES, measure, BENCH)


if __name__ == "__main__":
    sys.exit(main())
