"""``ledger retention run [--dry-run] [--json] [--no-progress]``: apply what the personal-data
lifecycle has due now (ledger/retention_run.py): deferred erasures whose retention ended,
erasures whose keys a crash left, de-identifications and the restrictions they bring.

Idempotent and safe to interrupt: each step is decided afresh from the log, so a second run
does nothing the first did, and a run killed half-way is finished by the next. A progress bar
(tqdm) goes to stderr; the summary (steps per kind) to stdout, as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

from tqdm import tqdm

from cli.args import add_database_url, add_json
from cli.exits import Exit
from ledger.retention_run import KINDS
from ledger.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "retention", help="the personal-data lifecycle's due steps (PIPL 47, ECL 31)"
    )
    sub = parser.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    run = sub.add_parser(
        "run", help="erase, de-identify and restrict what is due now; safe to rerun"
    )
    run.add_argument(
        "--dry-run", action="store_true", help="count what is due; write and destroy nothing"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_json(run, "the summary")
    add_database_url(run)
    run.set_defaults(run=cmd_run)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.application import open_ledger
    from ledger.retention_run import run_retention

    def progress(subjects: Iterator[str], total: int) -> Iterator[str]:
        return iter(
            tqdm(
                subjects,
                total=total,
                unit="subject",
                desc="retention",
                file=sys.stderr,
                disable=args.no_progress,
                mininterval=0.5,
                leave=False,
            )
        )

    ledger = open_ledger(settings.database_url, create=False, policy=settings.policy)
    try:
        summary = run_retention(ledger, dry_run=args.dry_run, progress=progress)
    finally:
        ledger.close()
    if args.json:
        print(json.dumps(summary.as_dict()))
        return Exit.OK
    done = "would be done (dry run)" if summary.dry_run else "done"
    print(f"retention run as of {summary.at.isoformat()}: {summary.subjects} data subject(s)")
    for kind in KINDS:
        print(f"  {kind:<13} {summary.steps.get(kind, 0)} {done}")
    return Exit.OK
