"""OrjsonTranscoder: round trips, and wire compatibility with eventsourcing's JSONTranscoder."""

from __future__ import annotations

import enum
from collections import OrderedDict, namedtuple
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, Snapshot, event
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Transcoder,
    Transcoding,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)

from ledger.library.transcoder import OrjsonTranscoder

SHANGHAI = timezone(timedelta(hours=8))
AT = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


@dataclass(frozen=True)
class Stamp:
    """A custom type whose encoded form holds other tagged types (nested tagging)."""

    at: datetime
    ref: UUID
    amounts: tuple[Decimal, ...]


class StampAsDict(Transcoding):
    type = Stamp
    name = "stamp"

    def encode(self, obj: Stamp) -> dict[str, Any]:
        return {"at": obj.at, "ref": obj.ref, "amounts": list(obj.amounts)}

    def decode(self, data: dict[str, Any]) -> Stamp:
        return Stamp(at=data["at"], ref=data["ref"], amounts=tuple(data["amounts"]))


def _json_transcoder() -> JSONTranscoder:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), StampAsDict()):
        transcoder.register(transcoding)
    return transcoder


def _orjson_transcoder() -> OrjsonTranscoder:
    transcoder = OrjsonTranscoder()
    transcoder.register(StampAsDict())
    return transcoder


SAMPLES: list[Any] = [
    {},
    {"s": "text", "i": -42, "big": 2**62, "f": 1.5, "t": True, "n": None},
    {"list": [1, "two", [3, [4]], {"five": 5}], "empty": [], "nested": {"a": {"b": {"c": 1}}}},
    {"timestamp": AT, "local": AT.astimezone(SHANGHAI)},
    {"id": UUID("9f1d2e3c-4b5a-6978-8a9b-0c1d2e3f4a5b"), "ids": [uuid4(), uuid4()]},
    {"price": Decimal("19.99"), "rate": Decimal("-0.000001")},
    {"deep": [{"at": AT, "why": [{"ref": uuid4(), "amount": Decimal("1.10")}]}]},
    {"stamp": Stamp(at=AT, ref=uuid4(), amounts=(Decimal("1"), Decimal("2.5")))},
    {"name": "张三", "address": "北京市朝阳区建国路88号（东门）", "emoji": "🆗"},
    {"looks_tagged": {"_type_": "uuid_hex", "_data_": "x", "extra": 1}},
    {"text": '"_type_" is just text here', "k": "_type_", "timestamp": AT},
    [AT, uuid4(), Decimal("3"), "plain"],
]


@pytest.mark.parametrize("sample", SAMPLES)
def test_round_trip(sample: Any) -> None:
    transcoder = _orjson_transcoder()
    assert transcoder.decode(transcoder.encode(sample)) == sample


@pytest.mark.parametrize("sample", SAMPLES)
def test_bytes_identical_to_json_transcoder(sample: Any) -> None:
    assert _orjson_transcoder().encode(sample) == _json_transcoder().encode(sample)


@pytest.mark.parametrize("sample", SAMPLES)
def test_each_decodes_what_the_other_encodes(sample: Any) -> None:
    ours, theirs = _orjson_transcoder(), _json_transcoder()
    assert ours.decode(theirs.encode(sample)) == sample
    assert theirs.decode(ours.encode(sample)) == sample


def test_round_trip_keeps_types() -> None:
    transcoder = _orjson_transcoder()
    ref = uuid4()
    decoded = transcoder.decode(
        transcoder.encode({"at": AT.astimezone(SHANGHAI), "ref": [ref], "d": Decimal("0.10")})
    )
    assert type(decoded["at"]) is datetime and decoded["at"].utcoffset() == timedelta(hours=8)
    assert type(decoded["ref"][0]) is UUID and decoded["ref"][0] == ref
    assert type(decoded["d"]) is Decimal and str(decoded["d"]) == "0.10"


def test_nested_tagged_values_are_restored_innermost_first() -> None:
    stamp = Stamp(at=AT, ref=uuid4(), amounts=(Decimal("9.90"),))
    encoded = _orjson_transcoder().encode({"outer": {"stamp": stamp, "at": AT}})
    assert encoded.count(b'"_type_"') == 5  # stamp, its datetime, its uuid, its decimal, at
    decoded = _orjson_transcoder().decode(encoded)
    assert decoded["outer"]["stamp"] == stamp
    assert type(decoded["outer"]["stamp"].ref) is UUID


def test_chinese_text_is_stored_as_raw_utf8() -> None:
    encoded = OrjsonTranscoder().encode({"name": "张三", "city": "北京"})
    assert "张三".encode() in encoded
    assert b"\\u" not in encoded
    assert encoded == '{"name":"张三","city":"北京"}'.encode()


def test_datetime_and_uuid_use_the_library_tags() -> None:
    ref = UUID("9f1d2e3c-4b5a-6978-8a9b-0c1d2e3f4a5b")
    encoded = OrjsonTranscoder().encode({"at": AT, "ref": ref})
    assert encoded == (
        b'{"at":{"_type_":"datetime_iso","_data_":"2024-05-01T12:30:15.123456+00:00"},'
        b'"ref":{"_type_":"uuid_hex","_data_":"9f1d2e3c4b5a69788a9b0c1d2e3f4a5b"}}'
    )


def test_encoding_does_not_change_the_callers_objects() -> None:
    ref = uuid4()
    inner = [ref, {"at": AT}]
    state = {"refs": inner, "n": 1}
    OrjsonTranscoder().encode(state)
    assert state == {"refs": [ref, {"at": AT}], "n": 1}
    assert state["refs"] is inner and inner[0] is ref


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Kind(enum.StrEnum):
    ORDER = "order"


Point = namedtuple("Point", "x y")


class Fen(float):
    pass


@pytest.mark.parametrize(
    "sample",
    [
        {"level": Level.HIGH, "kind": Kind.ORDER},
        {"tuple": (1, 2, (3,)), "point": Point(1, AT)},
        {"ordered": OrderedDict(a=uuid4(), b=1)},
        {1: "int key", None: "none key", 2.5: "float key"},
        {False: "bool key"},
        {"sub": Fen(2.5)},
    ],
)
def test_json_native_oddities_encode_like_json_transcoder(sample: Any) -> None:
    assert _orjson_transcoder().encode(sample) == _json_transcoder().encode(sample)


@pytest.mark.parametrize(
    "value",
    [uuid4(), date(2024, 1, 1), Colour.RED, AT, Decimal("1"), object()],
)
def test_unregistered_types_are_refused_like_json_transcoder(value: Any) -> None:
    bare = OrjsonTranscoder(register_defaults=False)
    with pytest.raises(TranscodingNotRegisteredError):
        bare.encode({"nested": [value]})
    with pytest.raises(TranscodingNotRegisteredError):
        JSONTranscoder().encode({"nested": [value]})


def test_unknown_tag_on_decode_is_refused() -> None:
    with pytest.raises(TranscodingNotRegisteredError):
        OrjsonTranscoder().decode(b'{"x":{"_type_":"martian","_data_":1}}')


# Plugging it into an Application ------------------------------------------------------------


class Order(Aggregate):
    @event("Placed")
    def __init__(self, order_no: str, buyer_name: str, total: Decimal, ref: UUID) -> None:
        self.order_no = order_no
        self.buyer_name = buyer_name
        self.total = total
        self.ref = ref
        self.paid_at: datetime | None = None

    @event("Paid")
    def pay(self, paid_at: datetime) -> None:
        self.paid_at = paid_at


class OrjsonApp(Application[UUID]):
    snapshotting_intervals = {Order: 2}

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()


def test_application_round_trips_events_and_snapshots() -> None:
    app = OrjsonApp(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    assert isinstance(app.mapper.transcoder, OrjsonTranscoder)
    order = Order("O-1", "张三", Decimal("59.97"), uuid4())
    order.pay(AT)
    app.save(order)
    loaded: Order = app.repository.get(order.id)
    assert loaded.buyer_name == "张三"
    assert loaded.total == Decimal("59.97") and type(loaded.ref) is UUID
    assert loaded.paid_at == AT
    assert app.snapshots is not None
    snapshot = next(iter(app.snapshots.get(order.id)))
    assert isinstance(snapshot, Snapshot)
    assert snapshot.state["ref"] == order.ref


def test_an_interrupt_while_encoding_stays_an_interrupt() -> None:
    """A Ctrl-C landing inside orjson's default= callback: orjson wraps it in a TypeError,
    which would reach the user as a traceback instead of ``ledger: interrupted``."""

    class Interrupting(OrjsonTranscoder):
        def _default(self, obj: Any) -> Any:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Interrupting().encode({"at": datetime(2026, 3, 1, tzinfo=UTC)})
