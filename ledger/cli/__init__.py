"""The one ``ledger`` command. Each subcommand lives in its own module with a ``register``.

Exit codes (DESIGN.md): 0 success, 1 a check found a problem, 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.settings import load_settings

SUBCOMMAND_MODULES = (
    "ledger.cli.demo",
    "ledger.cli.import_file",
    "projections.cli",
)
EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledger", description="mall-ledger: an event-sourced order ledger"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
        code: int = args.run(args, settings)
    except InvalidCommand as exc:
        print(f"ledger: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except LedgerError as exc:
        print(f"ledger: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_PROBLEM
    except OSError as exc:  # a file the ledger would write is unsafe or unwritable
        print(f"ledger: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ledger: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
