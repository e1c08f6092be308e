"""The parser, argument types and options shared by the subcommands.

A type refuses with ``argparse.ArgumentTypeError`` only, so argparse names the option
(``argument --batch-size: must be a whole number from 1 to 50000``), never this module's
function names; ``Parser`` prints that as the one line every CLI error is.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from cli.exits import Exit
from ledger.commands import (
    ACCOUNT_PATTERN,
    KEY_MAX_CHARS,
    parse_account_no,
    parse_key,
    parse_region,
)
from ledger.domain import codes
from ledger.domain.errors import InvalidCommand
from ledger.keystore import validate_subject_id


def one_line(text: str) -> str:
    """``text`` safe to print as one line: every character that is not printable (control
    characters such as ESC or a line feed, format characters such as a bidirectional
    override, line separators, lone surrogates from undecodable bytes) written as its Python
    escape (``\\x1b``), so nothing a user typed can end the line, forge a ``ledger:`` line or
    move the terminal's cursor."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def plain_text(text: str) -> str:
    """A docstring's paragraph as help text: reST's inline literals (````var/ledger.db````)
    without their backticks."""
    return _LITERAL.sub(r"\1", text)


_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, ``ledger: INVALID_COMMAND: …``
    with where to read the usage, and exit 2 (``Exit.USAGE``), as every other CLI error is
    one line; argparse's own prints the usage block and ``ledger: error: …``. Subparsers are
    made of this class too (argparse makes them of the parent's class).

    An option is never matched by a prefix (``allow_abbrev=False``): ``ledger commands
    --json`` would otherwise run as ``--json-schema``. A description or epilog taken from a
    docstring shows as plain text (``plain_text``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        for key in ("description", "epilog"):
            if kwargs.get(key):
                kwargs[key] = plain_text(kwargs[key])
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        line = one_line(" ".join(message.split()))
        self.exit(
            Exit.USAGE,
            f"ledger: {codes.INVALID_COMMAND.code}: {line} (see {self.prog} --help)\n",
        )


def parse_command_line(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> argparse.Namespace:
    """``parser.parse_args`` (``argv`` None: ``sys.argv[1:]``), except that an argument
    nothing takes is reported by the subcommand it was given to (``see ledger import
    --help``), and ``--version`` followed by anything is a usage error (argparse prints the
    version at ``--version`` and ignores the rest)."""
    given = short_forms(list(sys.argv[1:] if argv is None else argv))
    if given[:1] == ["--version"] and len(given) > 1:
        parser.error("argument --version: takes no other arguments")
    namespace, extras = parser.parse_known_args(given)
    if extras:
        chosen(parser, namespace).error(f"unrecognized arguments: {' '.join(extras)}")
    return namespace


# ``ledger export REQUEST_ID --out DIR`` (the form DESIGN.md names) is ``ledger export write
# REQUEST_ID --out DIR``: argparse cannot take a subcommand or an id in one place.
EXPORT_ACTIONS = ("request", "write", "-h", "--help")


def short_forms(given: list[str]) -> list[str]:
    """``given`` with a command's short form spelt out (``export REQUEST_ID`` → ``export
    write REQUEST_ID``)."""
    if len(given) > 1 and given[0] == "export" and given[1] not in EXPORT_ACTIONS:
        return ["export", "write", *given[1:]]
    return given


def chosen(
    parser: argparse.ArgumentParser, namespace: argparse.Namespace
) -> argparse.ArgumentParser:
    """The (sub)parser of the subcommand ``namespace`` was parsed for: each level's
    subcommand is the value of its subparsers' ``dest``."""
    for action in parser._actions:  # argparse keeps no other record of the path taken
        if isinstance(action, argparse._SubParsersAction):
            name = getattr(namespace, action.dest, None)
            if name in action.choices:
                return chosen(action.choices[name], namespace)
    return parser


@contextmanager
def named_as_option(field: str, option: str) -> Iterator[None]:
    """An ``InvalidCommand`` about ``field`` (a setting, a library parameter) raised in the
    block is named as the command-line option that gave the value."""
    try:
        yield
    except InvalidCommand as exc:
        if exc.field != field:
            raise
        raise InvalidCommand(option, exc.rule) from None


# Numbers as a user types them in ASCII: Python's int() and float() also take surrounding
# blanks, underscores ("1_0") and digits of other scripts ("٣"), which no one means here.
_WHOLE = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


def _whole_number(text: str, *, negative: bool) -> int | None:
    """``text`` as a whole number in ASCII digits (a leading minus if ``negative``), else
    None."""
    if not _WHOLE.fullmatch(text) or (text.startswith("-") and not negative):
        return None
    try:
        return int(text)
    except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
        return None


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high`` (no upper bound when ``high`` is None), in
    ASCII digits, with a leading minus only when ``low`` is negative."""
    rule = "must be a whole number " + (
        f"from {low} to {high}" if high is not None else f"of at least {low}"
    )

    def whole_number(text: str) -> int:
        value = _whole_number(text, negative=low < 0)
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(rule)
        return value

    return whole_number


def seconds_at_least(low: float) -> Callable[[str], float]:
    """A number of seconds, ``low`` or more (a floor, so a polling loop cannot spin)."""

    rule = f"must be a number of seconds, at least {low}"

    def seconds(text: str) -> float:
        if not _DECIMAL.fullmatch(text):  # ASCII digits and a point: no nan, inf, 1e3
            raise argparse.ArgumentTypeError(rule)
        value = float(text)
        if not value >= low or value == float("inf"):
            raise argparse.ArgumentTypeError(rule)
        return value

    return seconds


def identifier(text: str) -> str:
    """An identifier such as an order number, checked as a command's identifier fields are
    (``ledger.commands.Key``); refused naming the rule, never echoing the text."""
    return _checked(parse_key, text)


def _checked(parse: Callable[[str, str], str], text: str) -> str:
    """``parse``'s value, or argparse's refusal naming its rule, never echoing the text."""
    try:
        return parse(text, "")
    except InvalidCommand as exc:
        raise argparse.ArgumentTypeError(exc.rule) from None


SUBJECT_RULE = (
    f"must be an account number: 1 to {KEY_MAX_CHARS} of A-Z a-z 0-9 . _ / @ + - "
    "(as commands take account_no)"
)


def subject(text: str) -> str:
    """A subject id: an account number as commands take it (the key store's subjects are
    accounts, never a phone number or an email); refused naming the rule, never the text."""
    if re.fullmatch(ACCOUNT_PATTERN, text) is None or len(text) > KEY_MAX_CHARS:
        raise argparse.ArgumentTypeError(SUBJECT_RULE)
    try:
        return validate_subject_id(parse_account_no(text, "subject_id"))
    except InvalidCommand as exc:
        raise argparse.ArgumentTypeError(exc.rule) from None


def account_no(text: str) -> str:
    """An account number, checked as commands' ``account_no`` is (never a phone number or
    an email); refused naming the rule, never echoing the text."""
    return _checked(parse_account_no, text)


def region(text: str) -> str:
    """A region code, checked as commands' ``shipping_region`` is (``CN-BJ``)."""
    return _checked(parse_region, text)


def output_dir(text: str) -> Path:
    """An ``--out DIR``: a path, never the empty string (which would be the working
    directory, not a new one). Checked further by ``check_output_dir`` (ledger/access_files.py)."""
    if not text:
        raise argparse.ArgumentTypeError("must name a directory to make (it is empty)")
    return Path(text)


def one_of(names: Sequence[str]) -> Callable[[str], str]:
    """One of ``names`` (argparse's ``choices`` would repeat what was given, and refuses an
    empty ``nargs="*"``)."""
    rule = f"must be one of {', '.join(names)}"

    def name(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(rule)
        return text

    return name


def any_int(text: str) -> int:
    """A whole number in ASCII digits, negative allowed (a random seed)."""
    value = _whole_number(text, negative=True)
    if value is None:
        raise argparse.ArgumentTypeError("must be a whole number")
    return value


def add_batch_size(parser: argparse.ArgumentParser, *, what: str, high: int, default: int) -> None:
    """``--batch-size``: how many ``what`` (commands, events) one transaction holds, 1 to
    ``high``."""
    parser.add_argument(
        "--batch-size",
        type=int_range(1, high),
        default=default,
        help=f"{what} per transaction (1..{high}, default {default})",
    )


def add_database_url(parser: argparse._ActionsContainer, default_help: str | None = None) -> None:
    """``--database-url``: every command takes it; it wins over ``LEDGER_DATABASE_URL``."""
    parser.add_argument(
        "--database-url",
        metavar="URL",
        default=None,
        help=default_help
        or "postgresql://... (or postgres://...) or sqlite:///PATH (default: "
        "LEDGER_DATABASE_URL, else sqlite:///var/ledger.db)",
    )


def add_json(parser: argparse.ArgumentParser, what: str = "the report") -> None:
    """``--json``, its help "print ``what`` as JSON": ``what`` names the output only."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")
