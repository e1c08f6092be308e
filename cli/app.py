"""The parser and the one place that turns errors into one line and an exit code.

Every failure a user can cause or meet ends as ``ledger: CODE: message`` on stderr and an
exit code from ``cli.exits.Exit``: a ``LedgerError`` by its code; a database the drivers
cannot open or use as ``STORAGE_UNAVAILABLE``; a file that cannot be read or written (or is
unsafe to write through) as ``IO_ERROR`` (ledger/domain/codes.py).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import psycopg

from cli.args import Parser, named_as_option, one_line, parse_command_line
from cli.exits import Exit
from ledger.domain import codes
from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.settings import Settings, load_settings

SUBCOMMAND_MODULES = (
    "cli.demo",
    "cli.import_file",
    "cli.projections",
    "cli.orders",
    "cli.commands",
    "cli.keys",
    "cli.holds",
    "cli.history",
    "cli.replay",
    "cli.serve",
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EMPTY_URL_RULE = (
    "is empty: give postgresql://... or sqlite:///PATH, or leave the option out to use "
    "LEDGER_DATABASE_URL (else sqlite:///var/ledger.db)"
)


def package_version() -> str:
    try:
        return version("mall-ledger")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="ledger",
        description="mall-ledger: an event-sourced order ledger",
        epilog="exit status: 0 ok, 1 a problem, 2 bad usage or input, 3 a projection is "
        "stopped on a poison event, 130 interrupted, 143 terminated",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"ledger {package_version()}",
        help="print the version and exit (with nothing else on the line)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def settings_for(args: argparse.Namespace) -> Settings:
    """The environment's settings, ``--database-url`` taking the place of LEDGER_DATABASE_URL."""
    url = getattr(args, "database_url", None)
    if url is None:
        settings = load_settings()
    elif not url.strip():  # an empty variable means unset; an empty option is a mistake
        raise InvalidCommand("--database-url", EMPTY_URL_RULE)
    else:  # parsed and checked as the variable is, and named as the option
        with named_as_option("LEDGER_DATABASE_URL", "--database-url"):
            settings = load_settings({**os.environ, "LEDGER_DATABASE_URL": url})
    if settings.log_level not in LOG_LEVELS:
        raise InvalidCommand("LEDGER_LOG_LEVEL", f"must be one of {', '.join(LOG_LEVELS)}")
    return settings


def fail(code: str, message: str, status: Exit) -> Exit:
    print(f"ledger: {code}: {one_line(message)}", file=sys.stderr)
    return status


def driver_message(exc: Exception) -> str:
    """A driver error in one line. Only errors about reaching or opening the database show
    the driver's words (host, port, database name, "file is not a database"); any other names
    its class and SQLSTATE, since a statement's error may quote the values it carried."""
    if (
        isinstance(exc, psycopg.OperationalError | sqlite3.OperationalError)
        or type(exc) is sqlite3.DatabaseError
    ):
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    sqlstate = getattr(exc, "sqlstate", None)
    return f"{type(exc).__name__}" + (f" (SQLSTATE {sqlstate})" if sqlstate else "")


def run(argv: Sequence[str] | None = None) -> int:
    args = parse_command_line(build_parser(), argv)
    try:
        settings = settings_for(args)
        logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
        code: int = args.run(args, settings)
    except InvalidCommand as exc:
        return fail(exc.code, exc.message, Exit.USAGE)
    except LedgerError as exc:
        return fail(exc.code, exc.message, Exit.PROBLEM)
    except (psycopg.Error, sqlite3.Error) as exc:
        return fail(codes.STORAGE_UNAVAILABLE.code, driver_message(exc), Exit.PROBLEM)
    except BrokenPipeError:
        raise
    except OSError as exc:  # a file named to read or write is missing, unsafe or unwritable
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(codes.IO_ERROR.code, f"{where}{exc.strerror or exc}", Exit.USAGE)
    return code
