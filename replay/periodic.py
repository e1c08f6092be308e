"""Sealing on a timer beside the projections' worker (``LEDGER_SEAL_INTERVAL_S``; issue 12,
item 4: "the worker can seal periodically").

A thread of its own, with its own ledger and runtime (a runtime is one thread's), that seals
every ``interval_s`` seconds until told to stop, and once more as it stops, so what the worker
saw is sealed. A seal another process is running is skipped (``ProjectionsBusy``); any other
failure is logged and tried again next time: sealing never stops the worker.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from ledger.application import open_ledger
from ledger.domain.context import LOCAL_ACTOR
from ledger.domain.errors import LedgerError
from ledger.storage_url import StorageUrl
from projections.db import ProjectionsBusy
from projections.engine import open_runtime
from replay.seal import seal
from replay.signed_note import Signer

log = logging.getLogger(__name__)


class PeriodicSealer(threading.Thread):
    """Seals the ledger at ``url`` every ``interval_s`` seconds until ``stop`` is set."""

    def __init__(
        self,
        url: StorageUrl | None,
        signer: Signer,
        checkpoint_dir: Path,
        interval_s: float,
        stop: threading.Event,
    ) -> None:
        super().__init__(name="periodic-sealer", daemon=True)
        assert interval_s > 0, interval_s
        self.url, self.signer, self.checkpoint_dir = url, signer, checkpoint_dir
        self.interval_s, self.stop = interval_s, stop
        self.seals = 0

    def run(self) -> None:
        while not self.stop.wait(self.interval_s):
            self.seal_once()
        self.seal_once()

    def seal_once(self) -> None:
        """One seal; failures logged, never raised (the worker goes on)."""
        try:
            ledger = open_ledger(
                self.url, create=False, keys=False
            )  # sealing reads no personal data
            try:
                rt = open_runtime(self.url, create=False)
                try:
                    report = seal(ledger, rt, self.signer, self.checkpoint_dir, LOCAL_ACTOR)
                finally:
                    rt.close()
            finally:
                ledger.close()
        except ProjectionsBusy:
            log.info("another process is sealing: skipped")
            return
        except (LedgerError, OSError) as exc:
            log.warning("sealing failed, tried again in %ss: %s", self.interval_s, exc)
            return
        self.seals += 1
        log.info("sealed %s new events: %s in all", report.appended, report.size)
