"""Read-your-writes: wait until projections have applied a given log position.

A command returns the position of its last event (``CommandResult.position``); a query that
must see it calls ``wait_for(position)`` first. On PostgreSQL the wait sleeps on
``LISTEN pj_progress``, which the worker NOTIFYs in every batch's transaction, so it wakes as
soon as the batch commits; on SQLite it polls with a short backoff. When the timeout passes
first, ``ProjectionBehind`` says which projection is behind, where it is and what was asked.
A projection stopped on a poison event before the position will not get there until it is
resumed: ``ProjectionStopped`` says so at once instead of waiting out the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ledger.domain import codes
from ledger.domain.errors import LedgerError
from projections.db import HALTS_TABLE, PROGRESS_CHANNEL, Db, Listener
from projections.poison import read_halts
from projections.schema import LIVE
from projections.tracking import TrackingTable, tracking_name

DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 60.0
POLL_S = (0.002, 0.05)


class ProjectionBehind(LedgerError):
    """A projection has not reached the position a reader asked for within the timeout.

    ``behind``: each lagging projection's position; ``position``: the lowest of them (where
    the read models are, what an HTTP problem reports); ``asked``: the position asked for."""

    catalogued = codes.PROJECTION_BEHIND

    def __init__(self, behind: dict[str, int], asked: int, timeout_s: float) -> None:
        names = ", ".join(f"{name} at {reached}" for name, reached in sorted(behind.items()))
        super().__init__(
            f"projection(s) {names} did not reach position {asked} within {timeout_s:g}s; "
            "is `ledger projections run` running?"
        )
        self.behind = behind
        self.position = min(behind.values())
        self.asked = asked
        self.timeout_s = timeout_s

    def as_dict(self) -> dict[str, str]:
        return {**super().as_dict(), "position": str(self.position), "asked": str(self.asked)}


class ProjectionStopped(LedgerError):
    """A projection a reader waits for is stopped on an event it cannot apply, before the
    position asked for (``projections.poison``).

    ``stopped``: each stopped projection's poison position; ``position``: the lowest of them;
    ``asked``: the position asked for."""

    catalogued = codes.PROJECTION_STOPPED

    def __init__(self, stopped: dict[str, int], asked: int) -> None:
        names = ", ".join(f"{name} at {at}" for name, at in sorted(stopped.items()))
        super().__init__(
            f"projection(s) {names} stopped on an event they cannot apply, before position "
            f"{asked}; see `ledger projections status`"
        )
        self.stopped = stopped
        self.position = min(stopped.values())
        self.asked = asked

    def as_dict(self) -> dict[str, str]:
        return {**super().as_dict(), "position": str(self.position), "asked": str(self.asked)}


class Freshness:
    """Waits for positions on one database; keeps its LISTEN connection between waits.
    Without ``listen`` it polls on its own connection and opens no other (a process that
    must stay within its connection pool: the API)."""

    def __init__(self, db: Db, tracking: TrackingTable, *, listen: bool = True) -> None:
        self.db = db
        self.tracking = tracking
        self.listen = listen
        self._listener: Listener | None = None

    def positions(self, names: Sequence[str]) -> dict[str, int]:
        with self.db.snapshot() as cur:
            found = self.tracking.read(cur, [tracking_name(n, LIVE) for n in names])
        return {n: found.get(tracking_name(n, LIVE), 0) for n in names}

    def wait_for(
        self, position: int | None, names: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> dict[str, int]:
        """Return the projections' positions once all are at ``position`` or beyond."""
        reached = self.positions(names)
        if position is None or all(p >= position for p in reached.values()):
            return reached
        timeout_s = max(0.0, min(timeout_s, MAX_TIMEOUT_S))
        deadline = time.monotonic() + timeout_s
        listener = self._listen()
        delay = POLL_S[0]
        while True:
            reached = self.positions(names)  # read after LISTEN: no wake-up is lost
            behind = {n: p for n, p in reached.items() if p < position}
            if not behind:
                return reached
            self._fail_if_stopped(behind, position)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProjectionBehind(behind, position, timeout_s)
            if listener is None:
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, POLL_S[1])
            else:
                listener.wait(remaining)

    def _fail_if_stopped(self, behind: dict[str, int], position: int) -> None:
        with self.db.snapshot() as cur:
            halts = read_halts(self.db, cur) if self.db.table_exists(cur, HALTS_TABLE) else {}
        stopped = {
            name: halt.position
            for name in behind
            if (halt := halts.get(tracking_name(name, LIVE))) and halt.position <= position
        }
        if stopped:
            raise ProjectionStopped(stopped, position)

    def _listen(self) -> Listener | None:
        if self.db.kind != "postgres" or not self.listen:
            return None
        if self._listener is None:
            self._listener = self.db.listener(PROGRESS_CHANNEL)
        self._listener.drain()
        return self._listener

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
