"""Driver and library failures as one typed error, shared by the write side (``Ledger``) and
the read side (``projections.queries.ReadModels``), so both fail alike: ``STORAGE_UNAVAILABLE``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from eventsourcing.persistence import PersistenceError

from ledger.domain.errors import StorageUnavailable

# What the library and the drivers raise when the database cannot be reached or fails.
DRIVER_ERRORS: tuple[type[Exception], ...] = (PersistenceError, psycopg.Error, sqlite3.Error)


@contextmanager
def storage_errors() -> Iterator[None]:
    """Driver and library failures as ``StorageUnavailable`` (optimistic-concurrency clashes
    are handled where they happen). The message keeps the driver's first line, which names
    host and port, never a password: libpq and sqlite3 do not echo the connection string."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StorageUnavailable(f"database unavailable or failing: {reason}") from None
