"""``ledger hold place|release SUBJECT --reference REF``: legal holds on a data subject's
personal data (PIPL 47; ledger/domain/data_subject.py).

While a hold is on, neither de-identification nor erasure touches the subject's data. Each is
the ledger's command (``place_legal_hold``, ``release_legal_hold``), recorded with the local
actor; ``--command-id`` makes a retry of the same step a repeat (default: a new id each run).
Input is checked before the database is opened: a bad SUBJECT or reference is one line,
``ledger: INVALID_COMMAND: SUBJECT: …``, exit 2; a refusal (``LEGAL_HOLD_REFERENCE_REUSED``,
``NOT_FOUND`` for a reference not on the subject) is one line, exit 1.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, get_args

from cli.args import add_database_url, add_json, subject
from cli.exits import Exit
from ledger.commands import Command, parse_command
from ledger.domain.data_subject import HoldReason
from ledger.domain.errors import InvalidCommand
from ledger.settings import Settings

if TYPE_CHECKING:
    from ledger.application import CommandResult

# The command's fields as this command line names them.
ARGUMENT_NAMES = {
    "subject_id": "SUBJECT",
    "reference": "--reference",
    "reason": "--reason",
    "command_id": "--command-id",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "hold", help="place or release a legal hold on a data subject's personal data"
    )
    sub = parser.add_subparsers(dest="hold_command", required=True, metavar="ACTION")
    place = sub.add_parser("place", help="place a hold: no de-identification or erasure")
    subject_arguments(place, "the dispute's or investigation's file id")
    place.add_argument(
        "--reason",
        required=True,
        type=one_of(get_args(HoldReason)),
        metavar="|".join(get_args(HoldReason)),
        help="why the data is held",
    )
    place.set_defaults(run=cmd_place)
    release = sub.add_parser("release", help="release the hold under a reference")
    subject_arguments(release, "the reference the hold was placed under")
    release.set_defaults(run=cmd_release)


def one_of(words: tuple[str, ...]) -> Callable[[str], str]:
    """One of ``words``; argparse's own ``choices`` would repeat what was typed."""

    def word(text: str) -> str:
        if text not in words:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(words)}")
        return text

    return word


def subject_arguments(
    parser: argparse.ArgumentParser, reference_help: str, *, required: bool = True
) -> None:
    """SUBJECT, ``--reference``, ``--command-id``, ``--json``, ``--database-url``."""
    parser.add_argument(
        "subject", metavar="SUBJECT", type=subject, help="the data subject: its account number"
    )
    parser.add_argument("--reference", required=required, metavar="REF", help=reference_help)
    parser.add_argument(
        "--command-id",
        metavar="ID",
        default=None,
        help="the command id (send the same again to retry; default: a new one)",
    )
    add_json(parser, "the command's outcome")
    add_database_url(parser)


def cmd_place(args: argparse.Namespace, settings: Settings) -> int:
    command = hold_command(args, "place_legal_hold", reason=args.reason)
    return run_hold(command, settings, args.json, f"placed ({args.reason})")


def cmd_release(args: argparse.Namespace, settings: Settings) -> int:
    return run_hold(hold_command(args, "release_legal_hold"), settings, args.json, "released")


def hold_command(args: argparse.Namespace, kind: str, **fields: str) -> Command:
    """A hold's command (``subject_command``)."""
    return subject_command(args, kind, "hold", **fields)


def subject_command(
    args: argparse.Namespace, kind: str, id_prefix: str, **fields: str | None
) -> Command:
    """A command on a data subject (``SUBJECT``, ``--reference``, ``--command-id``; a new
    id ``<id_prefix>-<hex>`` without one), checked before any database is opened;
    InvalidCommand names the argument, never the value."""
    data = {
        "type": kind,
        "command_id": args.command_id or f"{id_prefix}-{uuid.uuid4().hex}",
        "subject_id": args.subject,
        "reference": args.reference,
        **fields,
    }
    try:
        return parse_command(data)
    except InvalidCommand as exc:
        field = exc.field.removeprefix(f"{kind}.")
        raise InvalidCommand(ARGUMENT_NAMES.get(field, field), exc.rule) from None


def execute(command: Command, settings: Settings) -> CommandResult:
    """Run ``command`` on the ledger the settings name (never creating a database)."""
    from ledger.application import open_ledger

    ledger = open_ledger(settings.database_url, create=False, policy=settings.policy)
    try:
        return ledger.execute(command)
    finally:
        ledger.close()


def run_hold(command: Command, settings: Settings, as_json: bool, done: str) -> int:
    result = execute(command, settings)
    if as_json:
        print(json.dumps(result.as_dict()))
    else:
        reference = getattr(command, "reference", "")
        again = " (a repeat: nothing new was written)" if result.duplicate else ""
        print(f"legal hold {reference} {done}{again}")
    return Exit.OK
