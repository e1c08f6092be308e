"""The exit codes of every ``ledger`` command, defined once (README, Commands)."""

from __future__ import annotations

import signal
from enum import IntEnum


class Exit(IntEnum):
    """What a ``ledger`` process's exit status means."""

    OK = 0
    # A check or an import found a problem; a refusal; the database cannot be used; stdout's
    # reader went away (``| head -1``: Python's convention for a closed pipe).
    PROBLEM = 1
    USAGE = 2  # bad arguments, settings or input (cli.args.Parser exits 2 too)
    STOPPED = 3  # a projection is stopped on a poison event (``ledger projections …``)
    INTERRUPTED = 128 + signal.SIGINT  # Ctrl-C: 130
    TERMINATED = 128 + signal.SIGTERM  # SIGTERM: 143
