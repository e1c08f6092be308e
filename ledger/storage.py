"""Storage chosen by one setting: LEDGER_DATABASE_URL unset → SQLite file; postgresql:// →
PostgreSQL. Translates it to the eventsourcing library's environment."""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ledger.files import open_lock_file, prepare_sqlite_file, private_directory
from ledger.pg_pool import lease_for, target_of
from ledger.settings import DEFAULT_SQLITE_PATH

APPLICATION_NAME = "ledger"
SETUP_LOCK_KEY = zlib.crc32(b"mall-ledger setup")


def is_postgres(database_url: str | None) -> bool:
    return bool(database_url) and str(database_url).startswith(("postgresql://", "postgres://"))


def sqlite_path_of(database_url: str | None, default: Path = DEFAULT_SQLITE_PATH) -> Path:
    if database_url and database_url.startswith("sqlite:///"):
        return Path(database_url.removeprefix("sqlite:///"))
    return default


def library_env(database_url: str | None, sqlite_path: Path | None = None) -> dict[str, str]:
    """The eventsourcing settings for our URL. Database functions stay off (they are reported
    to misbehave with several applications in one database)."""
    if is_postgres(database_url):
        assert database_url is not None
        target = target_of(database_url)
        return {
            # The library's factory with its datastore on the process's shared pool, whose
            # size is LEDGER_POOL_SIZE (the library's own pool settings go unused).
            "PERSISTENCE_MODULE": "ledger.pg_pool:SharedPoolPostgresFactory",
            "POSTGRES_DBNAME": target["dbname"],
            "POSTGRES_HOST": target["host"],
            "POSTGRES_PORT": target["port"],
            "POSTGRES_USER": target["user"],
            "POSTGRES_PASSWORD": target["password"],
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "APPLICATION_RECORDER_TOPIC": "ledger.pg_recorder:CopyApplicationRecorder",
            "CREATE_TABLE": "y",
        }
    path = sqlite_path or sqlite_path_of(database_url)
    prepare_sqlite_file(path)  # 0600 before SQLite opens it (its -wal/-shm follow), no links
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(path),
        "SQLITE_LOCK_TIMEOUT": "30",
        "APPLICATION_RECORDER_TOPIC": "ledger.sqlite_recorder:CheckedSQLiteApplicationRecorder",
        "CREATE_TABLE": "y",
    }


@contextmanager
def setup_lock(database_url: str | None, sqlite_path: Path | None = None) -> Iterator[None]:
    """One process at a time creates tables, when several (workers, API servers, a CLI)
    start together on a fresh database: on PostgreSQL two concurrent ``CREATE TABLE IF NOT
    EXISTS`` can fail on ``pg_type``'s unique index; on SQLite the library's tracking table
    inserts a migration row as it is created, and the second process fails on it."""
    if not is_postgres(database_url):
        with _file_lock(sqlite_path or sqlite_path_of(database_url)):
            yield
        return
    assert database_url is not None
    # A connection of the process's shared pool; the lease also keeps the pool open for
    # the stores opened under the lock.
    with lease_for(database_url) as pool, pool.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK_KEY,))


@contextmanager
def _file_lock(database_path: Path) -> Iterator[None]:
    """An exclusive lock on a file beside the database, held across processes."""
    private_directory(database_path.parent)
    lock_path = database_path.with_name(database_path.name + ".setup-lock")
    with open_lock_file(lock_path) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
