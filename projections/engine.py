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

Poison events. Each target's share of a page is applied in a savepoint of its own, so an
event one projection cannot apply rolls back that projection's share only; the engine then
bisects the share for the first event that fails, applies the events before it, moves that
target's tracking row to just before it and records a halt (``projections.poison``), in the
same transaction. A halted target is left out of later steps; the others carry on.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.application import LedgerApplication
from ledger.library.settings import library_env
from ledger.storage import opening
from ledger.storage_url import StorageUrl
from projections.base import Projection
from projections.batch import Batch, RowCache
from projections.db import META_TABLE, Db
from projections.db_postgres import PgDb
from projections.db_sqlite import SqliteDb
from projections.events import Decoder, Event, RawEvent
from projections.poison import (
    Skips,
    Undecodable,
    clear_halt,
    is_transient,
    read_halts,
    read_skips,
    reason_of,
    record_halt,
)
from projections.schema import LIVE
from projections.tracking import TrackingTable, tracking_name

log = logging.getLogger(__name__)

MAX_PAGE = 50_000
UNDECODED_AT = datetime(1970, 1, 1, tzinfo=UTC)


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
    halted: tuple[str, ...] = ()  # targets stopped on a poison event in this step


def first_gap(start: int, positions: Sequence[int]) -> int | None:
    """Index of the first position that does not follow the one before it (or ``start``)."""
    expected = start + 1
    for index, position in enumerate(positions):
        if position != expected:
            return index
        expected = position + 1
    return None


def settled(
    db: Db,
    cur: Any,
    start: int,
    page: list[RawEvent],
    read_again: Callable[[int], list[RawEvent]],
) -> tuple[list[RawEvent], int, bool]:
    """The part of ``page`` (rows after ``start`` in position order) that no transaction can
    still add a row inside, the position it ends at, and whether it stopped at a hole that may
    still fill. ``read_again(last)`` reads the rows in (``start``, ``last``] once more: with no
    writer left that could fill a hole, what is missing now stays missing (a rolled-back
    transaction's positions)."""
    if not page:
        return page, start, False
    gap = first_gap(start, [r.position for r in page])
    if gap is None:
        return page, page[-1].position, False
    last = page[-1].position
    if db.unsettled_writers(cur) == 0:
        return read_again(last), last, False
    before = page[:gap]
    return before, (before[-1].position if before else start), True


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
        # Events an operator left out of a projection, by (projection, version).
        self.skips: Skips = {}
        # Halted targets to try once more (a worker's start: after a fix, they may pass).
        self.retry: set[str] = set()

    def load_skips(self, cur: Any) -> None:
        self.skips = read_skips(self.db, cur)

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
            head = self.db.head(cur)
            active = self.unhalted(cur, targets)
            positions = self.tracking.read(cur, [t.name for t in active])
            return min(positions.values(), default=head), head

    def step(self, targets: Sequence[Target], limit: int, stop: int | None = None) -> StepResult:
        with self.transaction() as cur:
            return self.step_in(cur, targets, limit, stop)

    def step_in(
        self, cur: Any, targets: Sequence[Target], limit: int, stop: int | None = None
    ) -> StepResult:
        limit = max(1, min(limit, MAX_PAGE))
        positions = self.lock(cur, targets)
        active = self.unhalted(cur, targets)
        if not active:
            return StepResult(0, 0, min(positions.values(), default=0), False, False)
        start = min(positions[t.name] for t in active)
        page = self.read_page(cur, start, limit, topics_of(active), stop)
        return self.apply_page(cur, active, positions, page)

    def unhalted(self, cur: Any, targets: Sequence[Target]) -> list[Target]:
        """The targets not stopped on a poison event (or to be tried again). Read after the
        tracking rows are locked, so a halt another worker just recorded is seen."""
        halts = read_halts(self.db, cur)
        return [t for t in targets if t.name not in halts or t.name in self.retry]

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
            return Page(start, last, self.decode(rows), count, count >= limit, False)
        raw = self.db.fetch_events(cur, start, limit, topics, stop)
        rows, end, blocked = self.settle(cur, start, raw, topics, stop)
        events = self.decode([r for r in rows if r.state is not None])
        more = len(raw) >= limit and not blocked
        return Page(start, end, events, len(raw), more, blocked)

    def decode(self, rows: Sequence[RawEvent]) -> list[Event]:
        decode = self.decoder.decode
        try:
            return [decode(r) for r in rows]
        except Exception:  # noqa: BLE001 - one event that does not decode: mark it alone
            return [self.decode_one(r) for r in rows]

    def decode_one(self, raw: RawEvent) -> Event:
        try:
            return self.decoder.decode(raw)
        except Exception as exc:  # noqa: BLE001 - poison for the projections that handle it
            return Event(
                raw.position, raw.topic, raw.stream, raw.version, UNDECODED_AT, {}, reason_of(exc)
            )

    def apply_page(
        self, cur: Any, targets: Sequence[Target], positions: dict[str, int], page: Page
    ) -> StepResult:
        if page.end <= page.start:
            return StepResult(page.read, 0, page.start, False, page.blocked)
        applied, halted = 0, []
        for target in targets:
            done, stopped = self.apply_target(cur, target, page, positions[target.name])
            applied += done
            if stopped:
                halted.append(target.name)
        self.after_step(cur, targets)
        return StepResult(page.read, applied, page.end, page.more, page.blocked, tuple(halted))

    def apply_target(self, cur: Any, target: Target, page: Page, position: int) -> tuple[int, bool]:
        """Apply the page to one target in a savepoint of its own; on an event it cannot
        apply, stop it there (``halt``). Returns the events applied and whether it stopped."""
        mine = self.mine(target, page.events, position)
        if mine:
            try:
                with self.db.savepoint(cur):
                    self.apply(cur, target, mine, self.caches.get(target.name))
            except Exception as exc:  # noqa: BLE001 - sorted by is_transient
                if is_transient(exc):
                    raise
                self.forget(target)
                return self.halt(cur, target, mine, position, exc), True
        if page.end > position:
            self.tracking.advance(cur, target.name, page.end)
        if target.name in self.retry and clear_halt(self.db, cur, target.name, up_to=page.end):
            self.retry.discard(target.name)
            log.info("projection %s applied the event it had stopped on", target.name)
        return len(mine), False

    def mine(self, target: Target, events: Sequence[Event], position: int) -> list[Event]:
        """The events of the page this target has yet to apply."""
        projection = target.projection
        handlers = projection.handlers
        if events and events[0].position > position:
            mine = [e for e in events if e.topic in handlers]
        else:
            mine = [e for e in events if e.position > position and e.topic in handlers]
        skipped = self.skips.get((projection.name, projection.version))
        if skipped:
            mine = [e for e in mine if e.position not in skipped]
        return mine

    def forget(self, target: Target) -> None:
        """Rows a failed apply changed in place may be in the cache: drop them."""
        cache = self.caches.get(target.name)
        if cache is not None:
            cache.clear()

    def halt(
        self, cur: Any, target: Target, mine: list[Event], position: int, failure: Exception
    ) -> int:
        """Stop ``target`` on the first event of ``mine`` it cannot apply: apply those before
        it, move its tracking row to just before it, record the halt. Returns the events
        applied."""
        good, failure = self.bisect(cur, target, mine, failure)
        poison = mine[good]
        if good:
            with self.db.savepoint(cur):
                self.apply(cur, target, mine[:good], None)
        if poison.position - 1 > position:
            self.tracking.advance(cur, target.name, poison.position - 1)
        reason = reason_of(failure)
        record_halt(self.db, cur, target.name, poison.position, poison.topic, reason)
        self.retry.discard(target.name)
        log.error(
            "projection %s stopped at position %s (%s): %s; the others carry on "
            "(see `ledger projections status`)",
            target.name,
            poison.position,
            poison.topic,
            reason,
        )
        return good

    def bisect(
        self, cur: Any, target: Target, mine: list[Event], failure: Exception
    ) -> tuple[int, Exception]:
        """How many events of ``mine`` apply before the first that fails (and its failure):
        ``mine[:good]`` applies and ``mine[:bad]`` fails, narrowed until they are one apart.
        Each trial is rolled back and runs without the row cache."""
        good, bad = 0, len(mine)
        while bad - good > 1:
            middle = (good + bad) // 2
            found = self.trial(cur, target, mine[:middle])
            if found is None:
                good = middle
            else:
                bad, failure = middle, found
        return good, failure

    def trial(self, cur: Any, target: Target, events: list[Event]) -> Exception | None:
        try:
            with self.db.savepoint(cur, keep=False):
                self.apply(cur, target, events, None)
        except Exception as exc:  # noqa: BLE001 - sorted by is_transient
            if is_transient(exc):
                raise
            return exc
        return None

    def settle(
        self, cur: Any, start: int, page: list[RawEvent], topics: list[str], stop: int | None
    ) -> tuple[list[RawEvent], int, bool]:
        """The part of ``page`` that is safe to apply, the position it ends at, and whether
        the step stopped at a hole that may still fill (``settled``)."""
        return settled(
            self.db,
            cur,
            start,
            page,
            lambda last: self.db.fetch_events(cur, start, last - start, topics, last),
        )

    def apply(
        self, cur: Any, target: Target, events: Sequence[Event], cache: RowCache | None
    ) -> None:
        for event in events:
            if event.error is not None:
                raise Undecodable(event.error)
        projection = target.projection
        batch = Batch(self.db, cur, projection.tables, target.suffix, cache)
        projection.load(events, batch)
        projection.apply(events, batch)
        batch.flush()

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
    """Everything the projections need on one database, for one thread at a time: its
    connection's transactions are not guarded against another thread's (a worker thread and a
    rebuild or check each open their own runtime, as ``ledger projections`` does)."""

    db: Db
    tracking: TrackingTable
    engine: Engine
    url: StorageUrl

    def close(self) -> None:
        self.db.close()

    def reconnected(self) -> Runtime:
        """This runtime on a connection of its own, opened now (for a thread, or in a forked
        process, which must never use its parent's), sharing the decoder and the library's
        tracking recorder (it only composes statements for the cursor it is given)."""
        db = open_db(self.url)
        tracking = TrackingTable(self.tracking.recorder, self.tracking.table, db)
        engine = Engine(db, tracking, self.engine.decoder)
        engine.cache_ceiling = self.engine.cache_ceiling
        engine.skips = self.engine.skips
        return Runtime(db, tracking, engine, self.url)


def open_db(url: StorageUrl | str | None) -> Db:
    """A connection of the projections' own to the ledger's database (which must exist)."""
    where = StorageUrl.of(url)
    if where.pg is not None:
        return PgDb(where)
    assert where.sqlite_path is not None
    return SqliteDb(where.sqlite_path)


def open_runtime(url: StorageUrl | str | None, *, create: bool = True) -> Runtime:
    """Open the ledger's database for projections (a string is parsed as
    ``LEDGER_DATABASE_URL``; ``create`` as for ``open_ledger``: without it a missing database
    is ``STORAGE_UNAVAILABLE`` and nothing is made). The ledger application is constructed
    once, to create the events table if this is a fresh database and to take its mapper
    (transcoder, and a cipher or compressor if the environment configures one)."""
    where = StorageUrl.of(url)
    with opening(where, create=create):
        app = LedgerApplication(env=library_env(where))
        try:
            decoder = Decoder(app.mapper)
        finally:
            app.close()
        db = open_db(where)
        tracking = TrackingTable.open(where, db)
    return Runtime(db, tracking, Engine(db, tracking, decoder), where)
