"""Opening the ledger's database, given its ``StorageUrl`` (ledger/storage_url.py): the
set-up lock, whether a missing database may be created, and driver errors as one typed error.

Writers (``demo``, ``import``, ``projections run``, ``keys create``) open with ``create=True``:
a missing SQLite file and its directories are made, and an empty one (0 bytes, or a SQLite
database without tables) is made a ledger. Readers open with ``create=False`` and make
nothing: a missing SQLite file, one that is not a SQLite database, or one without the
ledger's events table (empty, or another program's database) is ``STORAGE_UNAVAILABLE`` and
is left byte for byte as it was, as a PostgreSQL database without the events table is. A
writer refuses another program's SQLite database too (tables, none of them the ledger's
events table): the ledger never adds its tables to someone else's database. A PostgreSQL
database is never created (the server's administrator makes it); a missing one, or a server
not answering, is ``STORAGE_UNAVAILABLE`` for either.
"""

from __future__ import annotations

import fcntl
import sqlite3
import stat
import zlib
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from psycopg import Connection
from psycopg.rows import tuple_row

from ledger.domain.errors import StorageUnavailable
from ledger.driver_errors import storage_errors
from ledger.files import lock_file_held, prepare_sqlite_file, private_directory
from ledger.library.tables import PG_EVENTS_TABLE, PG_SCHEMA, SQLITE_EVENTS_TABLE
from ledger.pg_pool import lease_for
from ledger.storage_url import StorageUrl

APPLICATION_NAME = "ledger"
SETUP_LOCK_KEY = zlib.crc32(b"mall-ledger setup")


@contextmanager
def opening(url: StorageUrl, *, create: bool) -> Iterator[None]:
    """Around opening every store on ``url``: the database checked (or its SQLite file made,
    when ``create``), first-time table creation serialised between processes, and driver
    errors raised as ``STORAGE_UNAVAILABLE``."""
    with storage_errors():
        if url.sqlite_path is not None:
            _check_sqlite(url.sqlite_path, create=create)
        with setup_lock(url, require_ledger=not create):
            yield


def _check_sqlite(path: Path, *, create: bool) -> None:
    """Raises StorageUnavailable for a path that is missing and not to be created, that is a
    directory or another non-regular file but a link, that is not a SQLite database, or whose
    tables are not a ledger's (``_check_sqlite_tables``), all left as they are; ``UnsafeFile``
    (ledger/files.py) for a link. A missing file is made 0600 (in 0700 directories) when
    ``create``.

    Checked before anything is made or tightened, and outside the set-up lock: the library
    creates the events table in one transaction before any other table of ours, so a ledger
    being set up meanwhile shows no tables or the events table, never only others."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        if not create:
            raise StorageUnavailable(
                f"no ledger at {path}: nothing has been written there yet"
            ) from None
    else:
        if stat.S_ISDIR(found.st_mode):
            raise StorageUnavailable(f"{path} is a directory, not a SQLite database")
        if not stat.S_ISLNK(found.st_mode) and not stat.S_ISREG(found.st_mode):
            raise StorageUnavailable(f"{path} is not a regular file, not a SQLite database")
        if stat.S_ISREG(found.st_mode):
            _check_sqlite_tables(path, create=create)
    prepare_sqlite_file(path)  # 0600 before SQLite opens it (its -wal/-shm follow), no links


def _check_sqlite_tables(path: Path, *, create: bool) -> None:
    """The file opened read-only (nothing is written): it must be a SQLite database holding
    the ledger's events table, or, for a writer (``create``), one without any table yet (a
    0-byte file is such a database). Raises StorageUnavailable otherwise."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.DatabaseError:
        raise StorageUnavailable(f"{path} is not a SQLite database") from None
    tables = {str(name) for (name,) in rows}
    if SQLITE_EVENTS_TABLE in tables or (create and not tables):
        return
    if not create:
        raise StorageUnavailable(no_ledger_message(f"SQLite {path}", SQLITE_EVENTS_TABLE))
    raise StorageUnavailable(
        f"{path} is another program's SQLite database (it has tables, none of them "
        f"{SQLITE_EVENTS_TABLE}): the ledger adds its tables only to its own database or an "
        "empty file; name another file"
    )


def no_ledger_message(where: str, events_table: str) -> str:
    """Why a reader refuses a database without the ledger's events table, alike for SQLite
    and PostgreSQL."""
    return (
        f"no ledger at {where}: it has no {events_table} table (a writer makes it: ledger "
        "demo, ledger import, ledger projections run)"
    )


@contextmanager
def setup_lock(url: StorageUrl, *, require_ledger: bool = False) -> Iterator[None]:
    """One process at a time creates tables, when several (workers, API servers, a CLI)
    start together on a fresh database: on PostgreSQL two concurrent ``CREATE TABLE IF NOT
    EXISTS`` can fail on ``pg_type``'s unique index; on SQLite the library's tracking table
    inserts a migration row as it is created, and the second process fails on it."""
    if url.sqlite_path is not None:
        with _file_lock(url.sqlite_path):
            yield
        return
    # A connection of the process's shared pool; the lease also keeps the pool open for
    # the stores opened under the lock.
    with lease_for(url) as pool, pool.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK_KEY,))
        try:
            if require_ledger:
                _check_pg_ledger(conn, url)
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_KEY,))


def _check_pg_ledger(conn: Connection[Any], url: StorageUrl) -> None:
    """A reader opens a ledger, never makes one: a PostgreSQL database without the events
    table is ``STORAGE_UNAVAILABLE`` (the stores would otherwise create their tables in
    whatever database a mistyped URL names), as a missing SQLite file is."""
    found = conn.cursor(row_factory=tuple_row).execute(
        "SELECT to_regclass(%s)", (f"{PG_SCHEMA}.{PG_EVENTS_TABLE}",)
    )
    row = found.fetchone()
    if row is None or row[0] is None:
        raise StorageUnavailable(no_ledger_message(url.where, PG_EVENTS_TABLE))


@contextmanager
def _file_lock(database_path: Path) -> Iterator[None]:
    """An exclusive lock across processes on a hidden file beside the database, removed when
    done (``lock_file_held``). Not a lock on the database file itself: closing any descriptor
    of that file would drop the POSIX locks SQLite holds on it in this process."""
    private_directory(database_path.parent)
    lock_path = database_path.with_name(f".{database_path.name}.setup-lock")
    with lock_file_held(lock_path, lambda handle: fcntl.flock(handle, fcntl.LOCK_EX)):
        yield
