"""Events as projections see them: position, topic, stream, time and the decoded fields.

Decoding skips the library's mapper (topic resolution, object construction) because a rebuild
decodes every event of the log: the stored state is JSON written by the ledger's orjson
transcoder, so ``orjson.loads`` gives the fields, with datetimes still tagged
(``{"_type_": "datetime_iso", "_data_": …}``); ``when`` reads them. An event stored with an
older ``class_version`` than its class goes the slow way instead: the application's transcoder
and the class's own ``upcast_vN_vN+1`` methods, exactly as the library's mapper does. A cipher
or compressor configured for the application is applied first, as the mapper would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar, cast

import orjson
from eventsourcing.persistence import Mapper
from eventsourcing.utils import resolve_topic

from ledger.library.transcoder import DATA_KEY

E = TypeVar("E")


class RawEvent(NamedTuple):
    """One row of the events table; ``state`` is None for topics the reader did not ask for."""

    position: int
    topic: str
    stream: str
    version: int
    state: bytes | None


@dataclass(slots=True)
class Event:
    position: int
    topic: str
    stream: str
    version: int
    at: datetime
    data: dict[str, Any]
    # Why the stored state did not decode (class names only); such an event is a poison
    # event for every projection that handles its topic (``projections.poison``).
    error: str | None = None

    def fields(self, event_class: type[E]) -> E:
        """The decoded fields, read as attributes typed by the event class that wrote them
        (``e.fields(ev.Shipped).carrier``), so mypy checks each name and type a view reads.
        No event object is built (a rebuild reads every event). Datetime fields arrive as
        stored: read them with ``when``."""
        assert getattr(event_class, "TOPIC", None) == self.topic, (event_class, self.topic)
        return cast(E, Fields(self.data))


class Fields:
    """A decoded event's fields as attributes, without copying them."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None


_PARSED: dict[str, datetime] = {}
_PARSED_MAX = 50_000  # events of one command share their time: remember recent ones


def when(value: Any) -> datetime | None:
    """A datetime from a decoded field: tagged dict, ISO string, datetime or None."""
    if value is None:
        return None
    if type(value) is dict:
        value = value[DATA_KEY]
    if type(value) is str:
        found = _PARSED.get(value)
        if found is None:
            found = _utc(datetime.fromisoformat(value))
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[value] = found
        return found
    assert isinstance(value, datetime), value
    return _utc(value)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime in an event: {value!r}")
    if value.tzinfo is UTC:  # what the ledger writes: "+00:00" parses to this very object
        return value
    return value if value.utcoffset() == UTC.utcoffset(None) else value.astimezone(UTC)


def canonical_uuid(value: str) -> str:
    """SQLite stores stream ids as 32 hex digits, PostgreSQL as dashed text: one form here."""
    if len(value) == 32:
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return value


class Decoder:
    def __init__(self, mapper: Mapper[Any] | None = None) -> None:
        self.mapper = mapper
        self._versions: dict[str, int] = {}

    def class_version(self, topic: str) -> int:
        found = self._versions.get(topic)
        if found is None:
            found = int(getattr(resolve_topic(topic), "class_version", 1))
            self._versions[topic] = found
        return found

    def decode(self, raw: RawEvent) -> Event:
        assert raw.state is not None, f"event {raw.position} was read without its state"
        state = raw.state
        mapper = self.mapper
        if mapper is not None and (mapper.cipher or mapper.compressor):
            if mapper.cipher:
                state = mapper.cipher.decrypt(state)
            if mapper.compressor:
                state = mapper.compressor.decompress(state)
        data: dict[str, Any] = orjson.loads(state)
        stored_version = data.pop("class_version", 1)
        if stored_version != self.class_version(raw.topic):
            data = self._upcast(raw.topic, state, stored_version)
        at = when(data["timestamp"])
        assert at is not None
        return Event(raw.position, raw.topic, raw.stream, raw.version, at, data)

    def _upcast(self, topic: str, state: bytes, from_version: int) -> dict[str, Any]:
        """The library mapper's path: full transcoding, then each upcaster in turn."""
        if self.mapper is None:
            raise ValueError(f"{topic} v{from_version} needs upcasting: give the Decoder a mapper")
        data: dict[str, Any] = self.mapper.transcoder.decode(state)
        data.pop("class_version", None)
        cls = resolve_topic(topic)
        target = int(getattr(cls, "class_version", 1))
        while from_version < target:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(data)
            from_version += 1
        return data
