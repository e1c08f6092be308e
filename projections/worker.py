"""The projection worker: applies new events to the live projections, batch by batch.

It steps while there is a full page to read, then waits for new events: on PostgreSQL it
LISTENs on the channel the library's writer NOTIFYs in every insert transaction (the events
table's name, ``ledger_events``), so it wakes when a write commits; a timeout (``idle_s``)
re-checks anyway, as a guard against a lost connection. On SQLite it polls. At a hole in the
positions that may still fill (see ``projections.engine``) it waits briefly and reads again.

``stop`` (set by SIGTERM/SIGINT in ``ledger projections run``) is checked between batches:
the batch under way commits, then the worker returns.

A projection stopped on a poison event is left out (the others carry on, see
``projections.poison``); each start of a worker tries it once more from where it stopped.
A starting worker also removes the copies of a rebuild or check that was killed.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from projections.base import Projection
from projections.copies import remove_dead_copies
from projections.db import Listener
from projections.engine import Runtime, StepResult, Target, ensure_live
from projections.poison import Halt, read_halts
from projections.schema import BUILD, CHECK

log = logging.getLogger(__name__)

LIVE_BATCH = 1000
IDLE_S = 5.0
WAIT_SLICE_S = 0.5
GAP_BACKOFF_S = (0.01, 0.5)
STALLED_WARNING_S = 10.0
MAX_CONSECUTIVE_FAILURES = 10
RETRY_WAIT_S = 1.0


@dataclass
class WorkerStats:
    batches: int = 0
    events: int = 0
    position: int = 0
    failures: int = 0


class Worker:
    def __init__(
        self,
        rt: Runtime,
        projections: Sequence[Projection],
        *,
        batch: int = LIVE_BATCH,
        idle_s: float = IDLE_S,
    ) -> None:
        self.rt = rt
        self.projections = list(projections)
        self.batch = batch
        self.idle_s = idle_s
        self.stats = WorkerStats()

    def targets(self) -> list[Target]:
        stale = ensure_live(self.rt.db, self.rt.tracking, self.projections)
        for name in stale:
            log.warning(
                "projection %s was built by another version of its code: skipped; "
                "run `ledger projections rebuild %s`",
                name,
                name,
            )
        remove_dead_copies(self.rt, BUILD, "rebuild")
        remove_dead_copies(self.rt, CHECK, "check")
        targets = [Target(p) for p in self.projections if p.name not in stale]
        halts = self.halts()
        for target in targets:
            if target.name in halts:
                log.warning(
                    "projection %s is stopped at position %s (%s): trying it once more",
                    target.name,
                    halts[target.name].position,
                    halts[target.name].reason,
                )
        self.rt.engine.retry = {t.name for t in targets if t.name in halts}
        return targets

    def halts(self) -> dict[str, Halt]:
        """The halts of this worker's projections (stopped on a poison event)."""
        names = {Target(p).name for p in self.projections}
        with self.rt.db.reading() as cur:
            self.rt.engine.load_skips(cur)
            return {n: h for n, h in read_halts(self.rt.db, cur).items() if n in names}

    def run(self, stop: threading.Event, *, until_caught_up: bool = False) -> WorkerStats:
        """Apply events until ``stop`` is set (or, with ``until_caught_up``, until the
        projections reach the head of the log)."""
        targets = self.targets()
        if not targets:
            return self.stats
        listener = self.rt.db.listener(self.rt.db.events_channel)
        try:
            self._loop(targets, listener, stop, until_caught_up)
        finally:
            listener.close()
        return self.stats

    def _loop(
        self,
        targets: list[Target],
        listener: Listener,
        stop: threading.Event,
        until_caught_up: bool,
    ) -> None:
        backoff = GAP_BACKOFF_S[0]
        blocked_since: float | None = None
        while not stop.is_set():
            listener.drain()
            result = self._step(targets)
            if result is None:  # a failed batch, rolled back: try again shortly
                stop.wait(RETRY_WAIT_S)
                continue
            if result.more:
                continue
            if result.blocked:
                blocked_since = blocked_since or time.monotonic()
                if time.monotonic() - blocked_since > STALLED_WARNING_S:
                    log.warning(
                        "waiting at position %s for a transaction that may still commit "
                        "the next event",
                        result.position,
                    )
                    blocked_since = time.monotonic()
                stop.wait(backoff)
                backoff = min(backoff * 2, GAP_BACKOFF_S[1])
                continue
            backoff, blocked_since = GAP_BACKOFF_S[0], None
            if until_caught_up:
                return
            self._idle(listener, stop)

    def _idle(self, listener: Listener, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.idle_s
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or listener.wait(min(WAIT_SLICE_S, remaining)):
                return

    def _step(self, targets: list[Target]) -> StepResult | None:
        engine = self.rt.engine
        try:
            lowest, head = engine.lowest_and_head(targets)
            if head <= lowest:
                self.stats.position = lowest
                return StepResult(0, 0, lowest, False, False)
            result = engine.step(targets, self.batch)
        except (psycopg.OperationalError, sqlite3.OperationalError) as exc:
            self.stats.failures += 1
            log.warning("batch failed and was rolled back (%s): %s", type(exc).__name__, exc)
            if self.stats.failures >= MAX_CONSECUTIVE_FAILURES:
                raise
            self.rt.db.reconnect()
            return None
        self.stats.failures = 0
        self.stats.batches += 1
        self.stats.events += result.applied
        self.stats.position = result.position
        return result
