"""``ledger replay``: history as it was (replay/as_of.py), and the whole log replayed.

- ``replay order|entitlement|account KEY --as-of T | --position N``: the stream's state as of
  a moment (RFC 3339 with an offset) or a log position, with the events that led there, as one
  JSON object (personal fields sealed, as stored).
- ``replay check [NAME…]``: every projection rebuilt from the whole log into scratch tables and
  compared with the live one, row by row (``projections check``); exit 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from cli.args import add_database_url, identifier, int_range
from cli.exits import Exit
from cli.projections import add_check
from ledger.settings import Settings
from replay.as_of import KINDS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay", help="a stream as of a moment or position; the whole log replayed and checked"
    )
    sub = parser.add_subparsers(dest="replay_command", required=True, metavar="WHAT")
    for kind in KINDS:
        one = sub.add_parser(kind, help=f"an {kind}'s state as of a moment or a log position")
        one.add_argument("key", metavar="KEY", type=identifier, help=f"the {kind}'s number or code")
        when = one.add_mutually_exclusive_group(required=True)
        when.add_argument(
            "--as-of",
            type=moment,
            metavar="T",
            help="a moment with its offset, e.g. 2026-11-20T10:00:00+08:00",
        )
        when.add_argument("--position", type=int_range(1), metavar="N", help="a log position")
        add_database_url(one)
        one.set_defaults(run=cmd_as_of, kind=kind)
    add_check(
        sub,
        "replay the whole log into scratch projections and compare with the live "
        "ones; exit 1 on any difference",
    )


def moment(text: str) -> datetime:
    """An RFC 3339 moment with its offset; refused naming the rule, never echoing the text."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "must be a moment like 2026-11-20T10:00:00+08:00"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("must carry an offset, like +08:00 or Z")
    return value


def cmd_as_of(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.application import open_ledger
    from replay.as_of import replay_as_of

    ledger = open_ledger(settings.database_url, create=False, policy=settings.policy)
    try:
        found = replay_as_of(ledger, args.kind, args.key, at=args.as_of, position=args.position)
    finally:
        ledger.close()
    print(json.dumps(found.as_dict(), ensure_ascii=False, default=str))
    return Exit.OK
