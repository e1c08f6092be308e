"""`ledger demo`: run a simulated stretch of mall traffic and print what happened.

Exit code 0 when every command got the outcome its story predicts (accepted, or refused
with the expected code), 1 when some did not (they are listed on stderr), 2 on bad usage.

It writes into the database every other command reads (``--database-url``, else
LEDGER_DATABASE_URL, else ``var/ledger.db``), so ``ledger projections run --once`` right after
it shows what it wrote; ``--fresh`` writes a fresh file ``var/demo-<seed>-<orders>.db`` instead.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

import orjson

from cli.args import add_database_url, any_int, int_range
from cli.exits import Exit
from cli.invoked import invoked_as
from ledger.demo import (
    DEFAULT_BATCH,
    DEFAULT_ORDERS,
    DEFAULT_SEED,
    MAX_ORDERS,
    DemoOptions,
    demo_sqlite_path,
    run_demo,
)
from ledger.demo.summary import render_text
from ledger.demo.traffic import MIN_ORDERS_FOR_EVERY_PATH
from ledger.settings import Settings
from ledger.storage_url import DEFAULT_SQLITE_PATH, StorageUrl, strip_password

positive_int = int_range(1)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a simulated stretch of mall traffic and summarise it",
        description=(
            "Simulate mall traffic (orders, payments, deliveries, returns, refunds, refusals) "
            "through the ledger. It writes into the database the other commands read "
            "(--database-url, else LEDGER_DATABASE_URL, else var/ledger.db) beside what is "
            "there, under a run id demo<seed> (demo<seed>r2, r3 ... when taken); the same "
            "seed gives the same summary. --fresh writes a fresh SQLite file "
            "var/demo-<seed>-<orders>.db instead."
        ),
    )
    parser.add_argument(
        "--orders",
        type=int_range(1, MAX_ORDERS),
        default=DEFAULT_ORDERS,
        help=f"orders to simulate, 1 to {MAX_ORDERS} (default {DEFAULT_ORDERS}; every path "
        f"needs {MIN_ORDERS_FOR_EVERY_PATH}; the run's whole plan is held in memory, under "
        "a gigabyte at the most)",
    )
    parser.add_argument(
        "--seed", type=any_int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON object; all but its 'timing' and "
        "'run' keys is the same for the same seed and orders",
    )
    # One or the other: --fresh writes a file of its own, which a URL cannot also name.
    where = parser.add_mutually_exclusive_group()
    add_database_url(where)
    where.add_argument(
        "--fresh",
        action="store_true",
        help="write a fresh SQLite file var/demo-<seed>-<orders>.db (replacing an earlier one) "
        "instead of the ledger's database; not with --database-url",
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
        database_url=None if args.fresh else demo_database_url(settings),
        batch_size=args.batch_size,
    )
    report = run_demo(options)
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_json()).decode() + "\n")
    else:
        print(render_text(report.summary, report.timing, report.run))
    for line in report.unexpected:
        print(f"ledger demo: unexpected: {line}", file=sys.stderr)
    if not args.json:  # named as the user ran this, so each runs as printed
        ledger, url = invoked_as(), _url_option(args, options)
        print(f"next: {ledger} projections run --once{url}, then {ledger} projections status{url}")
        if args.database_url and strip_password(args.database_url)[1]:
            # A password is never echoed: the next commands take it from the environment.
            print("(the URL's password is left out: set PGPASSWORD or put it in ~/.pgpass)")
    return Exit.OK if not report.unexpected else Exit.PROBLEM


def demo_database_url(settings: Settings) -> StorageUrl:
    """The database the other commands read by default, so the next command sees the demo."""
    return settings.database_url or StorageUrl.sqlite(DEFAULT_SQLITE_PATH)


def _url_option(args: argparse.Namespace, options: DemoOptions) -> str:
    """What the next commands need to read where the demo wrote."""
    if args.fresh:
        return f" --database-url sqlite:///{demo_sqlite_path(options)}"
    if args.database_url:
        return f" --database-url {shlex.quote(strip_password(args.database_url)[0])}"
    return ""
