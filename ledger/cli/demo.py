"""`ledger demo`: run a simulated stretch of mall traffic and print what happened.

Exit code 0 when every command got the outcome its story predicts (accepted, or refused
with the expected code), 1 when some did not (they are listed on stderr), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from ledger.demo import DEFAULT_BATCH, DEFAULT_ORDERS, DEFAULT_SEED, DemoOptions, run_demo
from ledger.demo.summary import render_text
from ledger.demo.traffic import MIN_ORDERS_FOR_EVERY_PATH
from ledger.settings import Settings

EXIT_OK, EXIT_PROBLEM = 0, 1


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a simulated stretch of mall traffic and summarise it",
        description=(
            "Simulate mall traffic (orders, payments, deliveries, returns, refunds, refusals) "
            "through the ledger. By default it writes a fresh SQLite file "
            "var/demo-<seed>-<orders>.db, so the same seed gives the same summary. With "
            "--database-url or LEDGER_DATABASE_URL it writes into that database beside what "
            "is there, under a run id demo<seed> (demo<seed>r2, r3 ... when taken)."
        ),
    )
    parser.add_argument(
        "--orders",
        type=positive_int,
        default=DEFAULT_ORDERS,
        help=f"orders to simulate (default {DEFAULT_ORDERS}; every path needs "
        f"{MIN_ORDERS_FOR_EVERY_PATH})",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON object; all but its 'timing' and "
        "'run' keys is the same for the same seed and orders",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="postgresql://... or sqlite:///... to write into instead of a "
        "fresh SQLite file (default: LEDGER_DATABASE_URL if set)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH,
        help=f"commands per transaction (default {DEFAULT_BATCH}; 1 = each command on its own)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.orders < MIN_ORDERS_FOR_EVERY_PATH:
        print(
            f"ledger demo: {args.orders} orders leave some paths out "
            f"(every path needs {MIN_ORDERS_FOR_EVERY_PATH})",
            file=sys.stderr,
        )
    options = DemoOptions(
        orders=args.orders,
        seed=args.seed,
        database_url=args.database_url or settings.database_url,
        batch_size=args.batch_size,
    )
    report = run_demo(options)
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_json()).decode() + "\n")
    else:
        print(render_text(report.summary, report.timing, report.run))
    for line in report.unexpected:
        print(f"ledger demo: unexpected: {line}", file=sys.stderr)
    return EXIT_OK if not report.unexpected else EXIT_PROBLEM
