"""``ledger erase SUBJECT [--reference REF]``: erase a data subject's personal data by
destroying its keys (PIPL 47; ledger/erasure.py), as the ledger's command ``request_erasure``
recorded with the local actor.

Under a legal hold the request is refused (``ledger: LEGAL_HOLD: …``, exit 1), and so it is
while an order of the subject is being performed (``ledger: ORDER_IN_PROGRESS: …`` naming the
orders, exit 1; PIPL 13(2)); while the
law keeps the subject's records it is deferred (``ledger: RETENTION_REQUIRED: …`` naming the
date, exit 1): its data is restricted meanwhile and ``ledger retention run`` erases it then.
Either way the request and its outcome are in the log. Input is checked as ``ledger hold``
checks it (cli/holds.py, whose code this shares).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from cli.exits import Exit
from cli.holds import execute, subject_arguments, subject_command
from ledger.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "erase",
        help="erase a data subject's personal data (refused under a hold, deferred while "
        "the law keeps its records)",
    )
    subject_arguments(parser, "the erasure request's file id", required=False)
    parser.set_defaults(run=cmd_erase)


def cmd_erase(args: argparse.Namespace, settings: Settings) -> int:
    result = execute(subject_command(args, "request_erasure", "erase"), settings)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"data subject erased at {result.result['erased_at']}: its keys are destroyed")
    return Exit.OK
