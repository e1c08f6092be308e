"""``ledger …``: the entry layer, above ``ledger/`` and ``projections/`` (and the coming
``api/`` and ``replay/``). Nothing below imports it.

This module imports only the standard library and ``cli.exits``, so that a Ctrl-C while the
rest loads (the subcommands import the ledger, pydantic, psycopg …) is caught here and ends
the process with one line and exit code 130, as it does later on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from cli.exits import Exit


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``ledger`` command; its exit code (cli.exits.Exit)."""
    try:
        from cli.app import run

        code = run(argv)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        print("ledger: interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``ledger … | head -1``): stop quietly. Python's own advice
        # (library/signal.html, "Note on SIGPIPE"): point stdout at devnull so the flush at
        # exit does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return Exit.PROBLEM
