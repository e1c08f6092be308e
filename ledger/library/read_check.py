"""Reads checked at save time: a decision never rests on a stream another writer has changed.

The library detects a clash only on streams that are written (a second event with the same
stream and version breaks the primary key). A command also decides on streams it only reads:
an order is accepted because its account was not restricted, a batch of an import runs on
streams kept in the process's cache since an earlier batch. So the unit of work remembers the
version at which it read every stream (0 for a stream read as absent), and the save passes
those it did not write to the recorder as ``read_versions``. Inside the transaction that
inserts the events, once no other writer can commit (after the library's table lock on
PostgreSQL, after the first insert took SQLite's write lock), one query compares them with
the stored versions; if any stream moved, nothing is written and ``StaleRead`` is raised.

``StaleRead`` is the library's ``IntegrityError``, so every path that handles a lost race
handles it: a batch is run again command by command from fresh reads, a single command is
decided again on fresh reads (``Ledger.execute``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

# The keyword ``app.events.put`` passes on to the recorder's ``insert_events``.
READ_VERSIONS = "read_versions"

ReadVersions = Mapping[UUID, int]


class StaleRead(IntegrityError):
    """A stream the save only read was changed by another writer after it was read."""

    def __init__(self, changed: list[Any]) -> None:
        shown = ", ".join(str(i) for i in changed[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        super().__init__(f"streams read were changed by another writer: {shown}{more}")
        self.changed = changed


def read_versions_of(kwargs: Mapping[str, Any]) -> ReadVersions:
    found: ReadVersions = kwargs.get(READ_VERSIONS) or {}
    return found
