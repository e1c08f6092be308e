"""Stable event topics: stored rows name events by these strings, never by Python paths.

A class may be renamed or moved freely; its topic may not. A field change is a new
``class_version`` with an ``upcast_vN_vN+1`` static method, never an edit of stored rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from eventsourcing.utils import register_topic

T = TypeVar("T", bound=type)

PREFIX = "mall-ledger"


def topic(name: str) -> Callable[[T], T]:
    """Give an event class an explicit, registered topic such as ``mall-ledger/order/Shipped``."""

    def decorate(cls: T) -> T:
        full = f"{PREFIX}/{name}"
        cls.TOPIC = full  # type: ignore[attr-defined]  # set on any class
        register_topic(full, cls)
        return cls

    return decorate
