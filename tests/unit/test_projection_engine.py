"""Projection pieces that need no database: positions, decoding, comparison, the registry."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper

from ledger.domain import data_subject as ds
from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.domain.order import events as ev
from ledger.domain.topics import topic
from ledger.library.transcoder import OrjsonTranscoder
from projections.base import topic_of
from projections.check import compare_rows
from projections.engine import first_gap
from projections.events import Decoder, RawEvent, canonical_uuid, when
from projections.freshness import ProjectionBehind
from projections.registry import BY_NAME, PROJECTIONS, select
from projections.schema import BUILD, LIVE, Table, columns
from projections.views.limits import find, node_names
from projections.views.retention import STEPS

T = Table(
    name="things",
    columns=columns("k text, n int, v text"),
    key=("k",),
    load_by="k",
)


def test_first_gap() -> None:
    assert first_gap(10, []) is None
    assert first_gap(10, [11, 12, 13]) is None
    assert first_gap(10, [12, 13]) == 0
    assert first_gap(10, [11, 12, 14, 15]) == 2


def test_when_reads_every_form_and_keeps_utc() -> None:
    moment = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    tagged = {"_type_": "datetime_iso", "_data_": "2026-03-02T09:00:00+08:00"}
    assert when(tagged) == moment and when(tagged).tzinfo == UTC  # type: ignore[union-attr]
    assert when("2026-03-02T01:00:00+00:00") == moment
    assert when(moment.astimezone(timezone(timedelta(hours=8)))).utcoffset() == timedelta(0)  # type: ignore[union-attr]
    assert when(None) is None
    with pytest.raises(ValueError, match="naive"):
        when("2026-03-02T01:00:00")


def test_canonical_uuid() -> None:
    value = uuid4()
    assert canonical_uuid(value.hex) == str(value)
    assert canonical_uuid(str(value)) == str(value)


def stored(event: Any, mapper: Mapper[Any], position: int = 7) -> RawEvent:
    record = mapper.to_stored_event(event)
    return RawEvent(position, record.topic, str(record.originator_id), 1, record.state)


def test_decoding_matches_the_library_mapper() -> None:
    mapper: Mapper[Any] = Mapper(OrjsonTranscoder())
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    event = ev.Delivered(  # type: ignore[call-arg]
        originator_id=uuid4(),
        originator_version=4,
        timestamp=at,
        command_id="c-1",
        signer_relation="family",
        appearance_accepted=True,
        return_deadline=at + timedelta(days=8),
    )
    decoded = Decoder(mapper).decode(stored(event, mapper))
    assert decoded.topic == topic_of(ev.Delivered) and decoded.position == 7
    assert decoded.at == at and decoded.stream == str(event.originator_id)
    assert decoded.data["signer_relation"] == "family"
    assert when(decoded.data["return_deadline"]) == at + timedelta(days=8)


class Upcasted(Aggregate):
    @topic("test-projections/Renamed")
    class Renamed(Aggregate.Event):
        class_version = 2
        new_name: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["new_name"] = state.pop("old_name").upper()


def test_an_old_class_version_is_upcast_as_the_library_would() -> None:
    mapper: Mapper[Any] = Mapper(OrjsonTranscoder())
    old = {"timestamp": datetime(2026, 1, 1, tzinfo=UTC), "originator_topic": "x", "old_name": "a"}
    raw = RawEvent(
        1, "mall-ledger/test-projections/Renamed", str(uuid4()), 1, mapper.transcoder.encode(old)
    )
    decoded = Decoder(mapper).decode(raw)
    assert decoded.data["new_name"] == "A" and "old_name" not in decoded.data
    with pytest.raises(ValueError, match="upcasting"):
        Decoder().decode(raw)


def test_compare_rows_reports_each_kind_of_difference() -> None:
    live = iter([("a", 1, "x"), ("b", 2, "y"), ("d", 4, "w")])
    rebuilt = iter([("a", 1, "x"), ("b", 3, "y"), ("c", 3, "z"), ("d", 4, "w")])
    diff = compare_rows(T, live, rebuilt, shown=10)
    assert (diff.rows_live, diff.rows_rebuilt, diff.differences) == (3, 4, 2)
    assert diff.shown == [
        {"key": "b", "problem": "differs", "columns": {"n": {"live": 2, "rebuilt": 3}}},
        {"key": "c", "problem": "missing from live"},
    ]
    extra = compare_rows(T, iter([("z", 0, "")]), iter([]), shown=0)
    assert extra.differences == 1 and extra.shown == []


def test_tables_are_checked_and_named() -> None:
    assert T.physical(LIVE) == "pj_things" and T.physical(BUILD) == "pj_things__b"
    assert T.key_of({"k": "a", "n": 1, "v": ""}) == "a"
    with pytest.raises(AssertionError, match="load_by"):
        Table(name="bad", columns=columns("a text, b text"), key=("a", "b"), load_by="b")
    with pytest.raises(AssertionError, match="not all columns"):
        Table(name="bad", columns=columns("a text"), key=("z",))


def order_event_topics() -> set[str]:
    return {
        topic_of(cls)
        for _, cls in inspect.getmembers(ev, inspect.isclass)
        if issubclass(cls, ev.OrderEvent) and cls is not ev.OrderEvent
    }


def test_the_order_projection_handles_every_order_event() -> None:
    """Every order event, and the lifecycle events that blank an order's contact."""
    scrubs = {topic_of(ds.SubjectErased), topic_of(ds.DirectIdentifiersRemoved)}
    assert set(BY_NAME["orders"].handlers) == order_event_topics() | scrubs


def test_every_handled_topic_is_a_registered_event_class() -> None:
    decoder = Decoder()
    for projection in PROJECTIONS:
        for name in projection.handlers:
            assert decoder.class_version(name) >= 1, name
    assert set(STEPS) <= set(BY_NAME["retention"].handlers)


def test_select() -> None:
    assert select(None) == list(PROJECTIONS)
    assert [p.name for p in select(["payments", "orders"])] == ["orders", "payments"]
    with pytest.raises(InvalidCommand, match="unknown projection nope"):
        select(["nope"])


def test_linked_nodes_and_find() -> None:
    nodes = node_names("acct-1", {"address": "aa", "phone": "pp", "ip": "", "recipient": "rr"})
    assert nodes == [
        ("account:acct-1", "account", "acct-1"),
        ("address:aa", "address", None),
        ("phone:pp", "phone", None),
        ("recipient:rr", "recipient", None),
    ]
    assert find({"g1": "g2", "g2": "g3"}, "g1") == "g3"
    assert find({}, "g1") == "g1"


def test_projection_behind_is_a_ledger_error_with_a_code() -> None:
    error = ProjectionBehind({"orders": 4, "flags": 2}, 9, 1.5)
    assert isinstance(error, LedgerError) and error.code == "PROJECTION_BEHIND"
    assert "flags at 2, orders at 4" in error.message and "position 9" in error.message
    # Where the read models are (the furthest behind), and what was asked.
    assert error.as_dict()["position"] == "2" and error.as_dict()["asked"] == "9"
