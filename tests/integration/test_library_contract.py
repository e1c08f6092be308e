"""The upgrade checklist past eventsourcing 9.5 (ledger/library/): each internal of the library
the ledger relies on behaves as we rely on it, on SQLite and PostgreSQL. A failure here after an
upgrade names the place in ledger/library/ to change. (The transcoder's byte-for-byte wire
compatibility is tests/unit/test_transcoder.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    IntegrityError,
    JSONTranscoder,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic

from ledger.application import Ledger, LedgerApplication
from ledger.library.bulk_read import load_streams
from ledger.library.pg_recorder import COPY_MIN_EVENTS, CopyApplicationRecorder
from ledger.library.positions import position_of, version_at
from ledger.library.read_check import READ_VERSIONS, StaleRead
from ledger.library.sqlite_recorder import CheckedSQLiteApplicationRecorder
from ledger.library.tables import EVENT_COLUMNS, PG_EVENTS_CHANNEL, TRACKING_COLUMNS
from ledger.pg_pool import PoolLease
from projections.engine import Runtime
from projections.events import Decoder, RawEvent
from tests import builders as b


class Probe(Aggregate):
    """A stream of the test's own, written straight through ``events.put``."""

    @event("Noted")
    def note(self, text: str) -> None:
        self.text = text


def put(ledger: Ledger, *probes: Probe, **kwargs: Any) -> list[int]:
    """Each probe's pending events saved in one ``events.put``; their positions."""
    events = [e for probe in probes for e in probe.collect_events()]
    recordings = ledger.app.events.put(events, **kwargs)
    return [r.notification.id for r in recordings]


@pytest.fixture
def app(ledger_app: Ledger) -> LedgerApplication:
    return ledger_app.app


# -- recorders loaded by topic (library/settings.py, pg_factory.py) --------------------------


def test_the_recorders_named_by_topic_are_the_ones_in_use(app: LedgerApplication) -> None:
    recorder = app.recorder
    if isinstance(recorder, CopyApplicationRecorder):
        assert isinstance(recorder.datastore.pool, PoolLease)  # pg_factory swapped it in
        assert recorder.datastore.enable_db_functions is False
    else:
        assert isinstance(recorder, CheckedSQLiteApplicationRecorder)


# -- events.put passes keywords on to the recorder (read_check.py) ---------------------------


def test_events_put_passes_read_versions_to_the_recorder(ledger_app: Ledger) -> None:
    read = Probe()
    put(ledger_app, read)
    head = ledger_app.head_position()
    with pytest.raises(StaleRead) as caught:
        put(ledger_app, Probe(), **{READ_VERSIONS: {read.id: 0}})  # read as absent: moved
    assert caught.value.changed == [read.id]
    assert isinstance(caught.value, IntegrityError)
    assert ledger_app.head_position() == head  # nothing written
    put(ledger_app, Probe(), **{READ_VERSIONS: {read.id: 1}})
    assert ledger_app.head_position() == head + 1


def test_a_large_batch_checks_read_versions_too(ledger_app: Ledger) -> None:
    read = Probe()
    put(ledger_app, read)
    head = ledger_app.head_position()
    many = [Probe() for _ in range(COPY_MIN_EVENTS + 1)]
    with pytest.raises(StaleRead):
        put(ledger_app, *many, **{READ_VERSIONS: {read.id: 0}})
    assert ledger_app.head_position() == head


# -- notification ids in commit order (tables.py; projections/engine.py relies on it) --------


def test_notification_ids_follow_commit_order_one_by_one_and_in_batches(
    ledger_app: Ledger,
) -> None:
    singles = [put(ledger_app, Probe())[0] for _ in range(3)]
    batch = put(ledger_app, *[Probe() for _ in range(COPY_MIN_EVENTS + 2)])
    positions = singles + batch
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert batch == list(range(batch[0], batch[0] + len(batch)))
    assert ledger_app.head_position() == positions[-1]


# -- raw SQL on the library's tables (tables.py, bulk_read.py) -------------------------------


def test_the_events_table_has_the_columns_our_sql_reads(ledger_app: Ledger, rt: Runtime) -> None:
    probe = Probe()
    probe.note("hello")
    positions = put(ledger_app, probe)
    db = rt.db
    with db.reading() as cur:
        cur.execute(
            db.sql(
                f"SELECT {db.id_column}, {', '.join(EVENT_COLUMNS)} FROM {db.events_table} "
                f"WHERE {db.id_column} >= %s ORDER BY {db.id_column}"
            ),
            (positions[0],),
        )
        rows = cur.fetchall()
    assert [int(row[0]) for row in rows] == positions
    assert [row[1] for row in rows] == [get_topic(Probe.Created), get_topic(Probe.Noted)]
    assert {UUID(str(row[2])) for row in rows} == {probe.id}
    assert [int(row[3]) for row in rows] == [1, 2]
    with db.reading() as cur:
        events = db.fetch_events(cur, positions[0] - 1, 10, [row[1] for row in rows], None)
    assert [e.position for e in events] == positions
    assert all(isinstance(e, RawEvent) and e.state for e in events)


def test_bulk_read_folds_streams_as_the_repository_does(ledger_app: Ledger) -> None:
    noted = Probe()
    noted.note("x")
    put(ledger_app, noted, Probe())
    missing = Probe().id  # never saved
    found = load_streams(ledger_app.app, [noted.id, missing])
    assert found[missing] is None
    loaded = found[noted.id]
    assert isinstance(loaded, Probe) and loaded.text == "x" and loaded.version == 2
    assert vars(loaded) == vars(ledger_app.app.repository.get(noted.id))


def test_positions_and_versions_are_read_from_the_events_table(ledger_app: Ledger) -> None:
    """positions.py: an event's position by version, a stream's version as of a position."""
    probe = Probe()
    (first,) = put(ledger_app, probe)
    (other,) = put(ledger_app, Probe())
    probe.note("x")
    (second,) = put(ledger_app, probe)
    app = ledger_app.app
    assert position_of(app, probe.id, 1) == first and position_of(app, probe.id, 2) == second
    assert position_of(app, probe.id, 3) is None
    assert version_at(app, probe.id, first - 1) is None
    assert version_at(app, probe.id, other) == 1  # another stream's event moves nothing
    assert version_at(app, probe.id, second) == version_at(app, probe.id, second + 5) == 2


# -- the tracking recorder and its private _insert_tracking (tracking.py) --------------------


def test_insert_tracking_writes_in_the_given_transaction(rt: Runtime) -> None:
    name = "ledger:contract"
    table = rt.tracking

    def position() -> dict[str, int]:
        with rt.db.reading() as cur:
            return table.read(cur, [name])

    with pytest.raises(RuntimeError), rt.db.write() as cur:
        table.advance(cur, name, 5)
        assert table.read(cur, [name]) == {name: 5}  # seen inside the transaction
        raise RuntimeError("roll back")
    assert position() == {}  # rolled back with it
    with rt.db.write() as cur:
        table.advance(cur, name, 5)
    assert position() == {name: 5}
    with pytest.raises(IntegrityError), rt.db.write() as cur:
        table.advance(cur, name, 4)  # never backwards
    assert position() == {name: 5}


def test_the_tracking_table_has_the_columns_our_sql_reads(rt: Runtime) -> None:
    with rt.db.reading() as cur:
        cur.execute(f"SELECT {', '.join(TRACKING_COLUMNS)} FROM {rt.tracking.table}")
        cur.fetchall()


# -- the wire format (transcoder.py) and the projections' decoder ----------------------------


def _library_transcoder() -> JSONTranscoder:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return transcoder


@pytest.fixture
def stored_order(ledger_app: Ledger) -> Iterator[list[Any]]:
    ledger_app.execute(b.submit("SO-CONTRACT"))
    ledger_app.execute(b.pay("SO-CONTRACT"))
    yield list(ledger_app.app.recorder.select_events(ledger_app.order("SO-CONTRACT").id))


def test_stored_events_read_the_same_with_the_librarys_transcoder(
    ledger_app: Ledger, stored_order: list[Any]
) -> None:
    library = _library_transcoder()
    ours = ledger_app.app.mapper.transcoder
    assert stored_order
    for stored in stored_order:
        assert library.decode(stored.state) == ours.decode(stored.state)
        assert ours.decode(library.encode(ours.decode(stored.state))) == ours.decode(stored.state)


def test_the_projections_decoder_reads_what_the_mapper_writes(
    ledger_app: Ledger, stored_order: list[Any]
) -> None:
    decoder = Decoder(ledger_app.app.mapper)
    for n, stored in enumerate(stored_order, start=1):
        domain = ledger_app.app.mapper.to_domain_event(stored)
        raw = RawEvent(
            n, stored.topic, str(stored.originator_id), stored.originator_version, stored.state
        )
        event = decoder.decode(raw)
        assert event.at == domain.timestamp
        plain = {k: v for k, v in event.data.items() if type(v) in (str, int, bool)}
        assert plain and plain == {k: getattr(domain, k) for k in plain}


@pytest.mark.postgres
def test_the_library_notifies_the_events_channel_on_insert(pg_url: str) -> None:
    """The projections' worker sleeps until this NOTIFY (projections/db_postgres.py)."""
    from ledger.application import open_ledger
    from projections.engine import open_runtime

    ledger = open_ledger(pg_url)
    rt = open_runtime(pg_url)
    assert rt.db.events_channel == PG_EVENTS_CHANNEL  # type: ignore[attr-defined]
    listener = rt.db.listener(PG_EVENTS_CHANNEL)
    try:
        listener.drain()
        put(ledger, Probe())
        assert listener.wait(10.0)
    finally:
        listener.close()
        rt.close()
        ledger.close()
