"""Positions that commit out of order (PostgreSQL).

The library's writer takes ``LOCK TABLE <app>_events IN EXCLUSIVE MODE`` before inserting
(``PostgresApplicationRecorder._lock_table``), so writers queue and positions commit in
order: the first test shows a second writer waiting for a slow first one. A writer without
that lock — the library's own ``POSTGRES_ENABLE_DB_FUNCTIONS`` insert function, or any other
INSERT — can commit position n+1 while n is still in flight; a reader that then moves past n
skips it for good (Marten's async daemon, issue #3321). The second test makes exactly that
happen and shows the worker waits for n instead of skipping it, while a naive tail would not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from ledger.application import Ledger, LedgerApplication, Staged, open_ledger
from ledger.clock import ManualClock
from ledger.commands import parse_command
from ledger.domain.policy import Policy
from ledger.library.settings import library_env
from ledger.storage_url import StorageUrl
from projections.check import check
from projections.engine import Runtime, Target, ensure_live
from projections.registry import PROJECTIONS
from tests import builders as b
from tests.fix_app import opened_ledger, opened_runtime

AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def ledger(pg_url: str) -> Iterator[Ledger]:
    with opened_ledger(pg_url, ManualClock(AT)) as opened:
        yield opened


@pytest.fixture
def rt(pg_url: str) -> Iterator[Runtime]:
    with opened_runtime(pg_url) as opened:
        ensure_live(opened.db, opened.tracking, PROJECTIONS)
        yield opened


def exclusive_lock_held(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE relation = 'ledger_events'::regclass "
            "AND mode = 'ExclusiveLock' AND granted"
        ).fetchone()
    return bool(row and row[0])


def test_the_library_writer_commits_positions_in_order(pg_url: str, ledger: Ledger) -> None:
    slow = open_ledger(pg_url, clock=ManualClock(AT))
    recorder: Any = slow.app.recorder
    original = recorder._fetch_ids_after_insert_events

    def linger(*args: Any, **kwargs: Any) -> Any:
        ids = original(*args, **kwargs)  # inserted, table locked, not yet committed
        time.sleep(0.6)
        return ids

    recorder._fetch_ids_after_insert_events = linger
    first: list[Any] = []
    thread = threading.Thread(target=lambda: first.append(slow.execute(b.submit("SLOW-1"))))
    try:
        thread.start()
        deadline = time.monotonic() + 5
        while not exclusive_lock_held(pg_url) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert exclusive_lock_held(pg_url), "the library writer takes LOCK TABLE … EXCLUSIVE"
        started = time.monotonic()
        second = ledger.execute(b.submit("FAST-1", account_no="acct-2"))
        waited = time.monotonic() - started
        thread.join()
    finally:
        slow.close()
    assert waited > 0.3, "the second writer queued behind the first one's table lock"
    assert second.position is not None and first[0].position is not None
    assert second.position > first[0].position  # later commit, later positions


def stored_events(ledger: Ledger, command: dict[str, Any]) -> list[Any]:
    """The events a command would write, serialised, without writing them."""
    staged = ledger.stage(ledger.unit_of_work(), parse_command(command), None)
    assert isinstance(staged, Staged)
    return [ledger.app.mapper.to_stored_event(event) for event in staged.events]


def test_positions_committed_out_of_order_are_not_skipped(
    pg_url: str, ledger: Ledger, rt: Runtime
) -> None:
    ledger.execute(b.submit("BEFORE-1"))
    targets = [Target(p) for p in PROJECTIONS]
    assert not rt.engine.step(targets, 1000).more
    start = ledger.head_position()
    # B's ledger: the library with its insert function, which takes no table lock. (Made
    # first: creating its function and indexes would wait for A's lock.)
    env = {**library_env(StorageUrl.parse(pg_url)), "POSTGRES_ENABLE_DB_FUNCTIONS": "y"}
    fast = Ledger(LedgerApplication(env=env), ledger.keystore, ManualClock(AT), Policy())

    # A: a transaction that takes positions without the library's table lock, and lingers.
    slow = psycopg.connect(pg_url)
    rows = [
        (e.originator_id, e.originator_version, e.topic, e.state)
        for e in stored_events(ledger, b.submit("SLOW-2", account_no="acct-slow"))
    ]
    with slow.cursor() as cur:
        cur.executemany(
            "INSERT INTO ledger_events (originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, %s, %s) RETURNING notification_id",
            rows,
            returning=True,
        )
        held = []
        while True:
            held.append(cur.fetchone()[0])  # type: ignore[index]
            if not cur.nextset():
                break
    assert held[0] == start + 1

    # B commits later positions while A is still open.
    committed = fast.execute(b.submit("FAST-2", account_no="acct-fast"))
    assert committed.position is not None and committed.position > held[-1]

    # A naive tail (read after the last position seen) already sees B and would move past A.
    naive = ledger.app.recorder.select_notifications(start, 100, inclusive_of_start=False)
    assert [n.id for n in naive][0] > held[-1]

    result = rt.engine.step(targets, 1000)
    assert result.blocked and result.position == start, "stopped before the hole, not past it"
    assert read_order(rt, "FAST-2") is None

    slow.commit()  # A commits: the hole fills
    slow.close()
    result = rt.engine.step(targets, 1000)
    assert not result.blocked and result.position == committed.position
    assert read_order(rt, "SLOW-2") is not None and read_order(rt, "FAST-2") is not None
    assert all(r.differences == 0 for r in check(rt, PROJECTIONS))
    fast.app.close()


def test_a_rolled_back_position_is_a_hole_for_good(
    pg_url: str, ledger: Ledger, rt: Runtime
) -> None:
    ledger.execute(b.submit("HOLE-1"))
    with psycopg.connect(pg_url) as conn:  # takes a position, then rolls back
        rows = [
            (e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events(ledger, b.submit("NEVER-1", account_no="acct-never"))
        ]
        conn.cursor().executemany(
            "INSERT INTO ledger_events (originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, %s, %s)",
            rows,
        )
        conn.rollback()
    after = ledger.execute(b.submit("HOLE-2", account_no="acct-hole"))
    targets = [Target(p) for p in PROJECTIONS]
    result = rt.engine.step(targets, 1000)
    assert not result.blocked and result.position == after.position
    assert read_order(rt, "NEVER-1") is None and read_order(rt, "HOLE-2") is not None


def read_order(rt: Runtime, order_no: str) -> tuple[Any, ...] | None:
    with rt.db.snapshot() as cur:
        cur.execute("SELECT status FROM pj_orders WHERE order_no = %s", (order_no,))
        found: tuple[Any, ...] | None = cur.fetchone()
        return found
