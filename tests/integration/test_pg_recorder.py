"""The events recorder on PostgreSQL: large batches go in by binary COPY, with the positions
they were stored at, all or nothing, one writer at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from psycopg.rows import DictRow

from ledger.application import CommandResult, Ledger
from ledger.library.pg_recorder import COPY_MIN_EVENTS, CopyApplicationRecorder
from tests import builders as b
from tests.fix_app import opened_ledger

SEQUENCE = "pg_get_serial_sequence('ledger_events', 'notification_id')"


@pytest.fixture
def ledger(pg_url: str) -> Iterator[Ledger]:
    with opened_ledger(pg_url) as opened:
        yield opened


def recorder_of(ledger: Ledger) -> CopyApplicationRecorder:
    recorder = ledger.app.recorder
    assert isinstance(recorder, CopyApplicationRecorder)
    return recorder


def batch(size: int = COPY_MIN_EVENTS + 8) -> list[StoredEvent]:
    return [StoredEvent(uuid4(), 1, "test/Written", f'{{"n": {n}}}'.encode()) for n in range(size)]


def stored(recorder: CopyApplicationRecorder, first: int, size: int) -> list[tuple[int, object]]:
    found = recorder.select_notifications(first, size)
    return [(n.id, n.originator_id) for n in found]


def test_a_large_batch_is_copied_with_the_positions_it_was_stored_at(ledger: Ledger) -> None:
    recorder = recorder_of(ledger)
    ledger.execute(b.submit("O1"))  # the log does not start empty
    events = batch()
    ids = recorder.insert_events(events)
    assert ids is not None and len(ids) == len(events)
    assert stored(recorder, ids[0], len(events)) == [
        (i, e.originator_id) for i, e in zip(ids, events, strict=True)
    ]
    assert recorder.max_notification_id() == ids[-1]


def test_a_large_import_batch_reports_each_commands_own_position(ledger: Ledger) -> None:
    items: list[tuple[Any, datetime | None]] = [
        (b.submit(f"O{n}"), None) for n in range(COPY_MIN_EVENTS)
    ]
    results = ledger.execute_batch(items)
    positions = [r.position for r in results if isinstance(r, CommandResult) and r.position]
    assert len(positions) == len(items)
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert positions[-1] == ledger.head_position()
    recorder, previous = recorder_of(ledger), 0
    for position in positions:
        # Each command's events are the positions after the one before it, up to its own.
        own = recorder.select_notifications(previous + 1, position - previous)
        assert [n.id for n in own] == list(range(previous + 1, position + 1))
        assert [n.topic for n in own].count("mall-ledger/order/Submitted") == 1
        assert own[-1].topic == "mall-ledger/command/Recorded"
        previous = position


def test_a_batch_with_one_event_already_stored_writes_nothing(ledger: Ledger) -> None:
    recorder = recorder_of(ledger)
    first = batch()
    recorder.insert_events(first)
    head = recorder.max_notification_id()
    clashing = [*batch(), first[3]]
    with pytest.raises(IntegrityError):
        recorder.insert_events(clashing)
    assert recorder.max_notification_id() == head
    assert recorder.select_notifications((head or 0) + 1, 10) == []


class SequenceTakenMeanwhile(CopyApplicationRecorder):
    """Something outside the library takes ids from the events' sequence during the COPY."""

    url = ""

    def _copy(self, curs: psycopg.Cursor[DictRow], stored_events: Sequence[StoredEvent]) -> None:
        super()._copy(curs, stored_events)
        with psycopg.connect(self.url, autocommit=True) as other:
            other.execute(f"SELECT nextval({SEQUENCE})")


def test_positions_are_read_back_by_key_when_the_sequence_moved_meanwhile(
    ledger: Ledger, pg_url: str
) -> None:
    recorder = recorder_of(ledger)
    recorder.__class__ = SequenceTakenMeanwhile
    SequenceTakenMeanwhile.url = pg_url
    events = batch()
    ids = recorder.insert_events(events)
    assert ids is not None
    with psycopg.connect(pg_url) as conn:
        taken = conn.execute(f"SELECT pg_sequence_last_value({SEQUENCE}::regclass)").fetchone()
    assert taken == (ids[-1] + 1,)  # the COPY ran, then an id was taken outside it
    assert stored(recorder, ids[0], len(events)) == [
        (i, e.originator_id) for i, e in zip(ids, events, strict=True)
    ]


def test_of_two_writers_copying_the_same_events_exactly_one_wins(ledger: Ledger) -> None:
    recorder = recorder_of(ledger)
    events = batch()
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def write() -> None:
        start.wait()
        try:
            recorder.insert_events(events)
            outcomes.append("written")
        except IntegrityError:
            outcomes.append("refused")

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["refused", "written"]
    assert recorder.max_notification_id() == len(events)
