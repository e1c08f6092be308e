"""Storage chosen by one setting: LEDGER_DATABASE_URL unset → SQLite file; postgresql:// →
PostgreSQL. Translates it to the eventsourcing library's environment."""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg

from ledger.files import open_lock_file, prepare_sqlite_file, private_directory
from ledger.settings import DEFAULT_SQLITE_PATH

APPLICATION_NAME = "ledger"
SETUP_LOCK_KEY = zlib.crc32(b"mall-ledger setup")
SETUP_CONNECT_TIMEOUT_S = 10


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
        parts = urlsplit(database_url)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": "5",
            "POSTGRES_MAX_OVERFLOW": "5",
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
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
    with psycopg.connect(
        database_url, autocommit=True, connect_timeout=SETUP_CONNECT_TIMEOUT_S
    ) as conn:
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
