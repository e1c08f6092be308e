"""The exit codes of every ``ledger`` command, defined once (README, Commands)."""

from __future__ import annotations

import signal
from enum import IntEnum


class Exit(IntEnum):
    """What a ``ledger`` process's exit status means."""

    OK = 0
    PROBLEM = 1  # a check or an import found a problem; a refusal; the database cannot be used
    USAGE = 2  # bad arguments, settings or input (argparse exits 2 too)
    STOPPED = 3  # a projection is stopped on a poison event (``ledger projections …``)
    INTERRUPTED = 128 + signal.SIGINT  # Ctrl-C: 130
    TERMINATED = 128 + signal.SIGTERM  # SIGTERM: 143
