"""Mall traffic written into a ledger, for the projections' tests.

``traffic(orders, seed)`` is the demo's ``ledger.demo.traffic.generate_traffic``: ``(command,
at)`` pairs in time order over every path of the agreement, some meant to be refused.
``run_traffic`` writes them with ``Ledger.execute_batch`` (many commands per transaction).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from ledger.application import Ledger
from ledger.demo.traffic import generate_traffic

CHUNK = 200

Cmd = dict[str, Any]


def traffic(orders: int, seed: int = 7) -> Iterator[tuple[Cmd, datetime]]:
    return generate_traffic(orders, seed)


def run_traffic(
    ledger: Ledger, items: Iterable[tuple[Cmd, datetime]], chunk: int = CHUNK
) -> dict[str, int]:
    """Write the commands in chunks; how many were accepted and refused, the last position."""
    counts = {"accepted": 0, "refused": 0, "last_position": 0}
    pending: list[tuple[Any, datetime | None]] = []

    def flush() -> None:
        for outcome in ledger.execute_batch(pending):
            if isinstance(outcome, Exception):
                counts["refused"] += 1
            else:
                counts["accepted"] += 1
                counts["last_position"] = max(counts["last_position"], outcome.position or 0)
        pending.clear()

    for command, at in items:
        pending.append((command, at))
        if len(pending) >= chunk:
            flush()
    if pending:
        flush()
    return counts
