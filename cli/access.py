"""``ledger access SUBJECT --out DIR [--reference REF] [--json]``: a data subject's copy of
their personal data and orders (PIPL 45; ledger/access_copy.py).

DIR is made with subject.json, orders.json, one CSV per table (Chinese and English header
rows, UTF-8 with BOM) and manifest.json (each file's SHA-256 and size, the log position, the
time, the ledger's version), all at once or not at all. DIR must not exist or be an empty
directory: anything else is ``IO_ERROR``, exit 2, nothing written. The copy is recorded on the
subject's stream as ``AccessCopyGiven`` (the local actor, REF, the files' names and digests).
A subject the ledger does not know is ``NOT_FOUND``, exit 1. Ctrl-C (130) or SIGTERM (143)
removes the unfinished copy; a process killed outright leaves no DIR, only a hidden staging
directory beside it, which the next copy into DIR removes.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from cli.args import add_database_url, add_json, identifier, output_dir, subject
from cli.exits import Exit
from cli.projections import terminable_block
from ledger.domain.context import LOCAL_ACTOR
from ledger.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "access",
        help="give a data subject a copy of their personal data and orders (PIPL 45)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "subject", metavar="SUBJECT", type=subject, help="the data subject: its account number"
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        type=output_dir,
        help="the directory to make (must not exist, or be empty)",
    )
    parser.add_argument(
        "--reference",
        metavar="REF",
        type=identifier,
        default=None,
        help="the request's file id, recorded with the copy",
    )
    add_json(parser, "the summary (files, counts, position)")
    add_database_url(parser)
    parser.set_defaults(run=cmd_access)


def cmd_access(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.access_copy import give_access_copy
    from ledger.access_files import check_output_dir
    from ledger.application import open_ledger

    check_output_dir(args.out)  # before the database is opened
    ledger = open_ledger(settings.database_url, create=False, policy=settings.policy)
    try:
        with terminable_block():  # SIGTERM removes the unfinished copy, as Ctrl-C does
            receipt = give_access_copy(
                ledger,
                args.subject,
                args.out,
                LOCAL_ACTOR,
                reference=args.reference,
                progress=True,
            )
    finally:
        ledger.close()
    if args.json:
        print(json.dumps(receipt.as_dict(), ensure_ascii=False))
    else:
        counts = receipt.counts
        print(
            f"access copy of {receipt.subject_id} written to {receipt.out_dir}: "
            f"{counts.get('orders', 0)} order(s), {len(receipt.files)} files, as of log "
            f"position {receipt.position} (recorded at {receipt.recorded_at_position})"
        )
    return Exit.OK
