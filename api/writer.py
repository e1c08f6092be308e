"""How the API hands commands to the ledger: one writer owns the ledger's writes.

``Writer.submit`` returns a future that resolves once the command is durable (its
transaction committed) or refused; the HTTP layer awaits it without blocking the event loop
(``asyncio.wrap_future``). Refusals by a rule are recorded as the command's outcome
(``remember_refusals``), so a retry with the same ``Idempotency-Key`` gets the same refusal.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from ledger.application import CommandResult, Ledger
from ledger.domain.context import Actor


class Writer(Protocol):
    def submit(
        self, data: Any, actor: Actor, expected_version: int | None = None
    ) -> Future[CommandResult]: ...

    def close(self) -> None: ...


class SerialWriter:
    """One command per transaction, one at a time, on a thread of its own."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")

    def submit(
        self, data: Any, actor: Actor, expected_version: int | None = None
    ) -> Future[CommandResult]:
        return self._pool.submit(
            self.ledger.execute,
            data,
            actor=actor,
            remember_refusals=True,
            expected_version=expected_version,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
