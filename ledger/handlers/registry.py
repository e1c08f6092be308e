"""Handlers keyed by the command class they take: ``@handles(c.ShipOrder)`` registers a
function whose command parameter mypy checks is a ``c.ShipOrder``, and the application
dispatches on ``type(command)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ledger.commands import Command
from ledger.unit_of_work import Handler, UnitOfWork

C = TypeVar("C", bound=Command)

# One entry per command class. The value's parameter is Any only here: ``handles`` is the
# way in, and it ties each handler's parameter type to its key (tests read this mapping).
HANDLERS: dict[type[Command], Handler[Any]] = {}


def handles(command_class: type[C]) -> Callable[[Handler[C]], Handler[C]]:
    """Register the decorated function as the handler of ``command_class``; a second
    handler for the same class is a programming error."""

    def register(handler: Handler[C]) -> Handler[C]:
        if command_class in HANDLERS:
            raise TypeError(f"{command_class.__name__} already has a handler")
        HANDLERS[command_class] = handler
        return handler

    return register


def dispatch(command: Command, uow: UnitOfWork) -> None:
    """Run the handler registered for the command's own class."""
    HANDLERS[type(command)](command, uow)
