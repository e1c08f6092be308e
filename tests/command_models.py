"""The command models walked: every scalar field of every command, and a valid example of each
command generated from its model (every optional part filled in). Tests built on this cover a
field added later without being edited."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from ledger.commands import COMMAND_CLASSES, IntRange

# Values that make most text fields valid; the first one a field's own type accepts is used.
TEXT_CANDIDATES = ("k-1", "CN-SH", "13800000000", "192.0.2.1", "abcd")
MOMENT = "2026-03-01T10:00:00+08:00"


@dataclass(frozen=True)
class Leaf:
    """One scalar field of one command: its path in the JSON object and its declared type."""

    command: type[BaseModel]
    path: tuple[str | int, ...]
    kind: type
    metadata: tuple[Any, ...]
    nullable: bool = False

    @property
    def name(self) -> str:
        return ".".join(str(part) for part in (self.type_tag, *self.path))

    @property
    def type_tag(self) -> str:
        return str(get_args(self.command.model_fields["type"].annotation)[0])

    def meta(self, of: type) -> Any:
        found = [m for m in self.metadata if isinstance(m, of)]
        return found[0] if found else None


def _unwrap(annotation: Any, metadata: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
    """The annotation without ``| None`` and ``Annotated``, with all its metadata."""
    while True:
        if get_origin(annotation) in (Union, types.UnionType):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        elif get_origin(annotation) is Annotated:
            annotation, *extra = get_args(annotation)
            metadata = (*metadata, *extra)
        else:
            return annotation, metadata


def _leaves(
    model: type[BaseModel], command: type[BaseModel], prefix: tuple[Any, ...]
) -> Iterator[Leaf]:
    for name, info in model.model_fields.items():
        annotation, metadata = _unwrap(info.annotation, tuple(info.metadata))
        nullable = type(None) in get_args(info.annotation)
        for leaf in _leaves_of(annotation, metadata, command, (*prefix, name)):
            yield replace(leaf, nullable=nullable) if leaf.path == (*prefix, name) else leaf


def _leaves_of(
    annotation: Any, metadata: tuple[Any, ...], command: type[BaseModel], path: tuple[Any, ...]
) -> Iterator[Leaf]:
    if get_origin(annotation) is list:
        item, item_metadata = _unwrap(get_args(annotation)[0], ())
        yield from _leaves_of(item, item_metadata, command, (*path, 0))
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from _leaves(annotation, command, path)
    elif annotation in (str, int, bool, datetime):
        yield Leaf(command, path, annotation, metadata)
    elif get_origin(annotation) is not Literal:
        raise AssertionError(f"a field of a type this test does not know: {path} {annotation}")


def valid_value(annotation: Any, metadata: tuple[Any, ...] = ()) -> Any:
    """A valid JSON value for a field, every optional part filled in."""
    annotation, metadata = _unwrap(annotation, metadata)
    if get_origin(annotation) is Literal:
        return get_args(annotation)[0]
    if get_origin(annotation) is list:
        return [valid_value(get_args(annotation)[0])]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = annotation.model_fields.items()
        return {name: valid_value(info.annotation, tuple(info.metadata)) for name, info in fields}
    if annotation is datetime:
        return MOMENT
    if annotation is bool:
        return False
    if annotation is int:
        return next(m for m in metadata if isinstance(m, IntRange)).low
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated[(str, *metadata)])  # type: ignore[valid-type]
    for candidate in TEXT_CANDIDATES:
        try:
            return adapter.validate_python(candidate)
        except ValidationError:
            continue
    raise AssertionError(f"no candidate text fits {metadata}")


def example(command: type[BaseModel]) -> dict[str, Any]:
    return valid_value(command)  # type: ignore[no-any-return]


def with_value(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(data))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return copy


LEAVES = [leaf for command in COMMAND_CLASSES for leaf in _leaves(command, command, ())]
