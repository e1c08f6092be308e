"""Applying the log to projections in batches, exactly once.

One ``step`` is one transaction: lock the targets' tracking rows, read the next page of the
log after the lowest of their positions, apply each event to every target that has not seen
it, write the changed rows, and move each tracking row to the end of the page. A crash at any
point leaves rows and positions as the last commit left them. A second process stepping the
same targets waits on the tracking rows' lock and then starts from where the first ended.

Positions that commit out of order. On PostgreSQL the library's writer locks the events table
(``LOCK TABLE … IN EXCLUSIVE MODE``) before taking positions, so positions commit in order;
but a writer that skips that lock (the library's own insert function with
``POSTGRES_ENABLE_DB_FUNCTIONS``, a hand-written import) can commit position n+1 while n is
still in flight. A reader that then moves past n never sees it — the failure behind Marten's
async daemon skipping events under load (issue #3321). So a step never moves past a missing
position while another transaction that could still commit it holds a write lock on the
events table (``Db.unsettled_writers``); it stops just before the hole and tries again. A
missing position with no such writer is a rollback's hole and stays one forever.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.application import LedgerApplication
from ledger.storage import is_postgres, library_env, setup_lock, sqlite_path_of
from projections.base import Projection
from projections.batch import Batch, RowCache
from projections.db import META_TABLE, Db
from projections.db_postgres import PgDb
from projections.db_sqlite import SqliteDb
from projections.events import Decoder, Event, RawEvent
from projections.schema import LIVE
from projections.tracking import TrackingTable, tracking_name

MAX_PAGE = 50_000


@dataclass(frozen=True)
class Target:
    """A projection's tables in one of their copies (live, rebuild, check)."""

    projection: Projection
    suffix: str = LIVE

    @property
    def name(self) -> str:
        return tracking_name(self.projection.name, self.suffix)


@dataclass(frozen=True)
class Page:
    """Events read after ``start``, safe to apply up to ``end`` (holes settled)."""

    start: int
    end: int
    events: list[Event]
    read: int  # rows of the log read
    more: bool  # a full page: there may be more right away
    blocked: bool  # stopped before a position another transaction may still commit


def topics_of(targets: Sequence[Target]) -> list[str]:
    return sorted({topic for t in targets for topic in t.projection.handlers})


@dataclass(frozen=True)
class StepResult:
    read: int  # rows of the log read
    applied: int  # events applied, summed over targets
    position: int  # lowest target position after the step
    more: bool  # a full page was read: step again at once
    blocked: bool  # stopped before a position another transaction may still commit


def first_gap(start: int, positions: Sequence[int]) -> int | None:
    """Index of the first position that does not follow the one before it (or ``start``)."""
    expected = start + 1
    for index, position in enumerate(positions):
        if position != expected:
            return index
        expected = position + 1
    return None


class Engine:
    def __init__(self, db: Db, tracking: TrackingTable, decoder: Decoder) -> None:
        self.db = db
        self.tracking = tracking
        self.decoder = decoder
        # Rows kept between batches, for copies only this process writes (never live ones).
        self.caches: dict[str, RowCache] = {}
        # A ceiling on the values every cache keeps per table (None: each table's own cap);
        # the tests set a tiny one, so that rows leave the cache and are read back.
        self.cache_ceiling: int | None = None

    def own(self, target: Target) -> None:
        """This process alone writes ``target``, whose tables were just created empty (a
        rebuild's or a check's copy, under ``Db.exclusive``): keep its rows between batches."""
        assert target.suffix != LIVE, "live tables can have several writers"
        cache = RowCache(ceiling=self.cache_ceiling)
        cache.starts_empty(t.name for t in target.projection.tables)
        self.caches[target.name] = cache

    def disown(self, target: Target) -> None:
        self.caches.pop(target.name, None)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A write transaction; if it fails, cached rows may be ones it changed: drop them."""
        committed = False
        try:
            with self.db.write() as cur:
                yield cur
            committed = True
        finally:
            if not committed:
                for cache in self.caches.values():
                    cache.clear()

    def lowest_and_head(self, targets: Sequence[Target]) -> tuple[int, int]:
        """The lowest target position and the head of the log: a read-only look, so an idle
        worker does not take write locks just to find nothing new."""
        with self.db.reading() as cur:
            positions = self.tracking.read(cur, [t.name for t in targets])
            return min(positions.values(), default=0), self.db.head(cur)

    def step(self, targets: Sequence[Target], limit: int, stop: int | None = None) -> StepResult:
        with self.transaction() as cur:
            return self.step_in(cur, targets, limit, stop)

    def step_in(
        self, cur: Any, targets: Sequence[Target], limit: int, stop: int | None = None
    ) -> StepResult:
        limit = max(1, min(limit, MAX_PAGE))
        positions = self.lock(cur, targets)
        page = self.read_page(cur, min(positions.values()), limit, topics_of(targets), stop)
        return self.apply_page(cur, targets, positions, page)

    def lock(self, cur: Any, targets: Sequence[Target]) -> dict[str, int]:
        positions = self.tracking.read(cur, [t.name for t in targets], lock=True)
        missing = [t.name for t in targets if t.name not in positions]
        assert not missing, f"no tracking row for {missing}"
        return positions

    def read_page(
        self, cur: Any, start: int, limit: int, topics: list[str], stop: int | None
    ) -> Page:
        """The next events after ``start`` that are safe to apply, decoded. A window with
        no holes (the usual case) is read for the wanted topics only; one with holes is read
        whole, to find where the first hole is and whether it may still fill."""
        count, last = self.db.window(cur, start, limit, stop)
        if start + count == last:
            rows = self.db.fetch_topics(cur, start, last, topics) if count else []
            events = [self.decoder.decode(r) for r in rows]
            return Page(start, last, events, count, count >= limit, False)
        raw = self.db.fetch_events(cur, start, limit, topics, stop)
        rows, end, blocked = self.settle(cur, start, raw, topics, stop)
        events = [self.decoder.decode(r) for r in rows if r.state is not None]
        more = len(raw) >= limit and not blocked
        return Page(start, end, events, len(raw), more, blocked)

    def apply_page(
        self, cur: Any, targets: Sequence[Target], positions: dict[str, int], page: Page
    ) -> StepResult:
        if page.end <= page.start:
            return StepResult(page.read, 0, page.start, False, page.blocked)
        applied = 0
        for target in targets:
            applied += self.apply(cur, target, page.events, positions[target.name])
            if page.end > positions[target.name]:
                self.tracking.advance(cur, target.name, page.end)
        self.after_step(cur, targets)
        return StepResult(page.read, applied, page.end, page.more, page.blocked)

    def settle(
        self, cur: Any, start: int, page: list[RawEvent], topics: list[str], stop: int | None
    ) -> tuple[list[RawEvent], int, bool]:
        """The part of ``page`` that is safe to apply, the position it ends at, and whether
        the step stopped at a hole that may still fill."""
        if not page:
            return page, start, False
        gap = first_gap(start, [r.position for r in page])
        if gap is None:
            return page, page[-1].position, False
        last = page[-1].position
        if self.db.unsettled_writers(cur) == 0:
            # Nothing can still commit below ``last``: read the range again (in case a
            # hole filled between the read and the check); what is missing now stays so.
            again = self.db.fetch_events(cur, start, last - start, topics, last)
            return again, last, False
        before = page[:gap]
        return before, (before[-1].position if before else start), True

    def apply(self, cur: Any, target: Target, events: Sequence[Event], position: int) -> int:
        projection = target.projection
        handlers = projection.handlers
        if events and events[0].position > position:
            mine = [e for e in events if e.topic in handlers]
        else:
            mine = [e for e in events if e.position > position and e.topic in handlers]
        if not mine:
            return 0
        batch = Batch(self.db, cur, projection.tables, target.suffix, self.caches.get(target.name))
        projection.load(mine, batch)
        projection.apply(mine, batch)
        batch.flush()
        return len(mine)

    def after_step(self, cur: Any, targets: Sequence[Target]) -> None:
        live = [t.projection.name for t in targets if t.suffix == LIVE]
        if not live:
            return
        now = datetime.now(UTC)
        for name in live:
            cur.execute(
                self.db.sql(f"UPDATE {META_TABLE} SET last_batch_at = %s WHERE projection = %s"),
                (self.db.ts(now), name),
            )
        self.db.notify_progress(cur)


def new_generation() -> str:
    return secrets.token_hex(3)


def create_tables(db: Db, cur: Any, target: Target, gen: str, *, indexes: bool) -> None:
    for table in target.projection.tables:
        physical = table.physical(target.suffix)
        db.create_table(cur, table, physical, gen)
        if indexes or table.index_early:
            db.create_indexes(cur, table, physical, gen)


def ensure_live(db: Db, tracking: TrackingTable, projections: Sequence[Projection]) -> list[str]:
    """Create missing live tables, meta and tracking rows; returns the projections whose
    live tables were built by another version of their code (they need a rebuild)."""
    stale = []
    with db.write() as cur:
        db.serialise(cur, "ensure_live")
        db.create_meta(cur)
        for projection in projections:
            cur.execute(
                db.sql(f"SELECT version FROM {META_TABLE} WHERE projection = %s"),
                (projection.name,),
            )
            found = cur.fetchone()
            if found is None:
                gen = new_generation()
                create_tables(db, cur, Target(projection), gen, indexes=True)
                cur.execute(
                    db.sql(
                        f"INSERT INTO {META_TABLE} (projection, version, generation) "
                        "VALUES (%s, %s, %s)"
                    ),
                    (projection.name, projection.version, gen),
                )
            elif int(found[0]) != projection.version:
                stale.append(projection.name)
            tracking.ensure(cur, [tracking_name(projection.name, LIVE)])
    return stale


@dataclass
class Runtime:
    """Everything the projections need on one database."""

    db: Db
    tracking: TrackingTable
    engine: Engine
    database_url: str | None
    sqlite_path: Path | None = None

    def close(self) -> None:
        self.db.close()

    def reconnected(self) -> Runtime:
        """This runtime on a connection of its own, opened now (for a thread, or in a forked
        process, which must never use its parent's), sharing the decoder and the library's
        tracking recorder (it only composes statements for the cursor it is given)."""
        db = open_db(self.database_url, self.sqlite_path)
        tracking = TrackingTable(self.tracking.recorder, self.tracking.table, db)
        engine = Engine(db, tracking, self.engine.decoder)
        engine.cache_ceiling = self.engine.cache_ceiling
        return Runtime(db, tracking, engine, self.database_url, self.sqlite_path)


def open_db(database_url: str | None, sqlite_path: Path | None = None) -> Db:
    if is_postgres(database_url):
        assert database_url is not None
        return PgDb(database_url)
    return SqliteDb(sqlite_path or sqlite_path_of(database_url))


def open_runtime(database_url: str | None, sqlite_path: Path | None = None) -> Runtime:
    """Open the ledger's database for projections. The ledger application is constructed
    once, to create the events table if this is a fresh database and to take its mapper
    (transcoder, and a cipher or compressor if the environment configures one)."""
    with setup_lock(database_url, sqlite_path):
        app = LedgerApplication(env=library_env(database_url, sqlite_path))
        try:
            decoder = Decoder(app.mapper)
        finally:
            app.close()
        db = open_db(database_url, sqlite_path)
        tracking = TrackingTable.open(database_url, db, sqlite_path)
    return Runtime(db, tracking, Engine(db, tracking, decoder), database_url, sqlite_path)
