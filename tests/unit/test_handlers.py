"""Every command class has exactly one handler, and that handler is typed for it; and one
subject stream, whose version is the command's ETag."""

from __future__ import annotations

import inspect
import typing
from uuid import UUID

import pytest

from ledger import commands as c
from ledger.commands import COMMAND_CLASSES, Command, parse_command
from ledger.handlers import HANDLERS, subject_stream
from ledger.handlers.registry import handles
from tests.command_models import example


def command_parameters(handler: typing.Any) -> list[type]:
    """The annotated command classes among a handler's parameters (through its wrappers)."""
    hints = typing.get_type_hints(inspect.unwrap(handler))
    hints.pop("return", None)
    return [t for t in hints.values() if isinstance(t, type) and issubclass(t, c.Command)]


def test_every_command_class_has_a_handler_and_nothing_else_does() -> None:
    assert set(HANDLERS) == set(c.COMMAND_CLASSES)


@pytest.mark.parametrize("command_class", c.COMMAND_CLASSES, ids=lambda k: k.__name__)
def test_each_handler_takes_exactly_the_command_class_it_is_keyed_by(
    command_class: type[c.Command],
) -> None:
    assert command_parameters(HANDLERS[command_class]) == [command_class]


def test_a_second_handler_for_one_command_class_is_refused() -> None:
    with pytest.raises(TypeError, match="ShipOrder already has a handler"):
        handles(c.ShipOrder)(lambda cmd, uow: None)


@pytest.mark.parametrize("command_class", COMMAND_CLASSES, ids=lambda c: c.__name__)
def test_every_command_type_names_the_stream_its_version_is_about(
    command_class: type[Command],
) -> None:
    command = parse_command(example(command_class))
    assert isinstance(subject_stream(command), UUID)
