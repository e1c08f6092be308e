"""``ledger …``: the entry layer, above ``ledger/`` and ``projections/`` (and the coming
``api/`` and ``replay/``). Nothing below imports it.

This module imports only the standard library and ``cli.exits``, so that a Ctrl-C while the
rest loads (the subcommands import the ledger, pydantic, psycopg …) is caught here and ends
the process with one line and exit code 130, as it does later on.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from cli.exits import Exit


def _load_app() -> Callable[[Sequence[str] | None], int] | None:
    """``cli.app.run``, imported with Ctrl-C held back; None if one came meanwhile.

    An interrupt raised inside an import can land in a C extension's module set-up (orjson
    crashed the process with SIGSEGV) or in a class body (Python 3.11 reports it as a
    RuntimeError from ``__set_name__``): so while the ledger, pydantic and psycopg load,
    SIGINT is blocked (nothing at all runs in between), then noted and answered once they
    have."""
    if threading.current_thread() is not threading.main_thread():
        from cli.app import run  # called in-process from a thread: signals are not ours

        return run
    noted: list[int] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        noted.append(signum)

    previous: Any = signal.signal(signal.SIGINT, note)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        from cli.app import SUBCOMMAND_MODULES, run

        for name in SUBCOMMAND_MODULES:  # what the parser loads: all that a command uses
            importlib.import_module(name)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a pending one: noted
        signal.signal(signal.SIGINT, previous)
    return None if noted else run


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``ledger`` command; its exit code (cli.exits.Exit)."""
    try:
        run = _load_app()
        if run is None:
            raise KeyboardInterrupt
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
