"""Argument types and options shared by the subcommands.

A type refuses with ``argparse.ArgumentTypeError`` only, so argparse names the option
(``argument --batch-size: must be a whole number from 1 to 50000``), never this module's
function names.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high`` (no upper bound when ``high`` is None)."""
    span = f"from {low} to {high}" if high is not None else f"of at least {low}"

    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number {span}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be a whole number {span}")
        return value

    return whole_number


def seconds_at_least(low: float) -> Callable[[str], float]:
    """A number of seconds, ``low`` or more (a floor, so a polling loop cannot spin)."""

    rule = f"must be a number of seconds, at least {low}"

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(rule) from None
        if not value >= low or value == float("inf"):
            raise argparse.ArgumentTypeError(rule)
        return value

    return seconds


def any_int(text: str) -> int:
    """A whole number, negative allowed (a random seed)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None


def add_database_url(parser: argparse.ArgumentParser, default_help: str | None = None) -> None:
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
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")
