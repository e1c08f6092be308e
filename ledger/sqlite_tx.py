"""SQLite transactions that never outlive an interrupt.

``BEGIN IMMEDIATE`` waits for the database's write lock inside C; a Ctrl-C or SIGTERM that
arrives meanwhile is raised at the first bytecode after it returns, with the transaction
already begun. Begun outside a ``try``, that transaction (and the write lock) stays with the
connection, and whoever cleans up after the interrupt on another connection waits for the
busy timeout. Here every BEGIN is inside the ``try``, so every way out rolls back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """The write lock first (``BEGIN IMMEDIATE``), then the block; committed when the block
    ends normally, rolled back on any exception, ``KeyboardInterrupt`` included. ``conn``
    must be opened with ``isolation_level=None`` (we issue BEGIN and COMMIT ourselves)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.commit()
    finally:
        if conn.in_transaction:
            conn.rollback()


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One consistent snapshot for the block (``BEGIN``), always left by rolling back."""
    try:
        conn.execute("BEGIN")
        yield
    finally:
        if conn.in_transaction:
            conn.rollback()
