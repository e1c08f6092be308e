"""Reading ahead: for a copy one process owns (a rebuild's, a check's), a thread reads and
decodes the next page of the log on its own connection while the caller applies the current
one. The database works on one while Python works on the other (two cores), instead of each
waiting for the other.

Applying stays as in ``Engine.step``: one transaction per page that locks the tracking rows,
checks they are where the page starts, writes the rows and moves the positions. The reader
settles holes exactly as a step does; at one that may still fill it waits and reads again.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from projections.engine import Engine, Page, Runtime, StepResult, Target, topics_of

DEPTH = 2  # pages decoded ahead: memory is bounded by (DEPTH + 2) pages
GAP_WAIT_S = 0.05
PUT_SLICE_S = 0.2


class PageReader:
    def __init__(
        self, engine: Engine, start: int, limit: int, topics: list[str], stop: int | None
    ) -> None:
        self.engine = engine
        self.start = start
        self.limit = limit
        self.topics = topics
        self.stop = stop
        self.pages: queue.Queue[Page | BaseException] = queue.Queue(maxsize=DEPTH)
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._run, name="page-reader", daemon=True)

    def __enter__(self) -> PageReader:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt.set()
        self.thread.join(timeout=30)
        self.engine.db.close()

    def _put(self, item: Page | BaseException) -> bool:
        while not self.halt.is_set():
            try:
                self.pages.put(item, timeout=PUT_SLICE_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        position = self.start
        try:
            while not self.halt.is_set():
                with self.engine.db.reading() as cur:
                    page = self.engine.read_page(cur, position, self.limit, self.topics, self.stop)
                if not self._put(page) or not (page.more or page.blocked):
                    return
                if page.blocked:
                    time.sleep(GAP_WAIT_S)  # a hole that may still fill: never skip it
                position = page.end
        except BaseException as exc:  # noqa: BLE001 - handed to the applying thread, re-raised there
            self._put(exc)

    def __iter__(self) -> Iterator[Page]:
        while True:
            item = self.pages.get()
            if isinstance(item, BaseException):
                raise item
            yield item


def catch_up_pipelined(
    rt: Runtime,
    targets: Sequence[Target],
    limit: int,
    stop: int | None,
    after_page: Callable[[StepResult], None],
) -> StepResult | None:
    """Apply pages read ahead until the head (or ``stop``); None when the targets do not
    all start at the same position (then step them the ordinary way)."""
    engine = rt.engine
    with engine.transaction() as cur:
        positions = engine.lock(cur, targets)
        active = engine.unhalted(cur, targets)
    starts = {positions[t.name] for t in active}
    if len(starts) != 1:
        return None if starts else StepResult(0, 0, min(positions.values()), False, False)
    start = starts.pop()
    result = StepResult(0, 0, start, False, False)
    with PageReader(rt.reconnected().engine, start, limit, topics_of(active), stop) as reader:
        for page in reader:
            with engine.transaction() as cur:
                now = engine.lock(cur, active)
                moved = {n: p for n, p in now.items() if p != page.start}
                assert not moved, f"{moved}: another process writes a copy this one owns"
                result = engine.apply_page(cur, active, now, page)
            after_page(result)
            # A copy stopped on a poison event stays where it stopped; the others go on.
            active = [t for t in active if t.name not in result.halted]
            if not active or not (page.more or page.blocked):
                return result
    return result
