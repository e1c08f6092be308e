"""Console benchmark: p50 and p99 latency of the console's main pages at two log sizes.

    python -m bench.console [--orders N] [--seed S] [--steps K] [--samples K]

Runs on the PostgreSQL server of ``LEDGER_DATABASE_URL`` (default the local one) in a scratch
database ``bench_console_<pid>`` it creates and drops. The log is the demo's mall traffic
written through the import path (about 16 event rows per order) in ``--steps`` parts, each
its own traffic (``bench.common.traffic_parts``: one traffic of that many orders would run
past today). After the first part and after the last, the projections catch up (``ledger
projections run --once``) and the log is sealed, then each page is requested ``--samples``
times through the real ASGI app (signed in as an auditor, in this process; no network), over
a spread of the log's orders:

- ``orders_search``: the first page of the orders in one status;
- ``order``: an order's page (its row, payments, refunds, flags, codes, retention);
- ``timeline``: an order's timeline and state as of its last event (``replay_as_of``: its
  stream's events and command records, never the log);
- ``integrity``: the checkpoints with their signatures checked;
- ``projections``: each projection's position and lag.

The default ``--orders 62500 --steps 10`` gives about 100k events after the first part and
1M at the whole (about ten minutes of import on a 2-core machine). A timeline's cost should
not grow with the log: compare its p50 at both sizes. Progress goes to stderr; stdout gets
one JSON object per page and size, and last ``{"bench": "console", …}`` with all of them.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    EVENTS_TABLE,
    bench_main,
    count_rows,
    emit,
    log,
    scratch_database,
    traffic_parts,
    write_log,
)

BENCH = "console"
DEFAULT_ORDERS = 62_500
DEFAULT_STEPS = 10
MAX_STEPS = 100
DEFAULT_SAMPLES = 100
MAX_ORDERS = 200_000
ORDER_LINK = re.compile(r'href="/console/orders/([^"/]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def ledger_cli(url: str, cwd: Path, *args: str) -> None:
    """A ``ledger`` command on ``url`` in ``cwd`` (its signing key, its checkpoints)."""
    done = subprocess.run([sys.executable, "-m", "cli", *args, "--database-url", url],
                          cwd=cwd, capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"ledger {' '.join(args)} failed: {done.stderr[-500:]}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)


def measure_pages(url: str, tmp: Path, samples: int) -> dict[str, dict[str, float]]:
    """Each page's p50/p99 in ms over ``samples`` requests, signed in as an auditor."""
    from fastapi.testclient import TestClient

    from api.app import ApiSettings, create_app
    from ledger.api_keys import create_key
    from ledger.application import open_ledger

    ledger = open_ledger(url)
    try:
        key = create_key(ledger, "auditor", f"bench-{time.monotonic_ns()}").key
    finally:
        ledger.close()
    app = create_app(ApiSettings(url=url, signing_key_path=tmp / "var" / "signing-key.pem"))
    with TestClient(app) as client:
        form = client.get("/console/sign-in").text
        client.post("/console/sign-in", data={"key": key, "csrf": CSRF.findall(form)[0]})
        found = client.get("/console/orders", params={"status": "delivered"}).text
        orders = ORDER_LINK.findall(found) or ["none"]
        pages: dict[str, Callable[[int], str]] = {
            "orders_search": lambda i: "/console/orders?status=delivered",
            "order": lambda i: f"/console/orders/{orders[i % len(orders)]}",
            "timeline": lambda i: f"/console/orders/{orders[i % len(orders)]}/timeline",
            "integrity": lambda i: "/console/integrity",
            "projections": lambda i: "/console/projections",
        }
        figures = {}
        for name, path in pages.items():
            took = []
            for i in range(samples):
                started = time.perf_counter()
                answer = client.get(path(i))
                took.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    raise RuntimeError(f"{name} answered {answer.status_code}")
            figures[name] = {"p50_ms": percentile(took, 0.5), "p99_ms": percentile(took, 0.99)}
    return figures


def measure(args: argparse.Namespace, server: str, tmp: Path) -> dict[str, Any]:
    parts, source = traffic_parts(args.orders, args.seed, tmp, args.steps)
    sizes = []
    with scratch_database(server, f"bench_console_{os.getpid()}") as url:
        for number, part in enumerate(parts):
            write_log(url, part, tmp)
            if number not in (0, len(parts) - 1):
                continue  # measured at the first part's size and the whole log's
            ledger_cli(url, tmp, "projections", "run", "--once")
            ledger_cli(url, tmp, "seal")
            events = count_rows(url, EVENTS_TABLE)
            log(f"measuring the pages at {events} events")
            figures = measure_pages(url, tmp, args.samples)
            for page, found in figures.items():
                emit({"bench": "console_page", "events": events, "page": page, **found})
            sizes.append({"events": events, "pages": figures})
    return {"bench": BENCH, "workload": source, "samples": args.samples, "sizes": sizes}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    orders_help = f"orders in the log, ~16 event rows each (default {DEFAULT_ORDERS})"
    parser.add_argument("--orders", type=int, default=DEFAULT_ORDERS, help=orders_help)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"parts the log is written in (default {DEFAULT_STEPS})")  # fmt: skip
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                        help=f"requests per page and size (default {DEFAULT_SAMPLES})")  # fmt: skip
    parser.set_defaults(child=None)
    args = parser.parse_args(argv)
    if not 2 <= args.orders <= MAX_ORDERS:
        parser.error(f"--orders must be between 2 and {MAX_ORDERS}")
    if not 2 <= args.steps <= min(MAX_STEPS, args.orders):
        parser.error(f"--steps must be between 2 and {MAX_STEPS}, and at most --orders")
    if not 1 <= args.samples <= 10_000:
        parser.error("--samples must be between 1 and 10000")
    return args


def main(argv: list[str] | None = None) -> int:
    return bench_main(parse_args(argv), {}, measure, BENCH)  # no child phases: one process


if __name__ == "__main__":
    sys.exit(main())
