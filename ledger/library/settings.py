"""The library's settings implied by a ``StorageUrl``. Database functions stay off (they are
reported to misbehave with several applications in one database)."""

from __future__ import annotations

from ledger.storage_url import StorageUrl

POOL_SIZE_KEY = "LEDGER_POOL_SIZE"  # read back by pg_factory.SharedPoolPostgresFactory


def library_env(url: StorageUrl) -> dict[str, str]:
    """The eventsourcing environment for ``url``, tables created if missing."""
    if url.pg is not None:
        target = url.pg
        return {
            # The library's factory with its datastore on the process's shared pool, whose
            # size is the URL's pool size (the library's own pool settings go unused).
            "PERSISTENCE_MODULE": "ledger.library.pg_factory:SharedPoolPostgresFactory",
            "POSTGRES_DBNAME": target.dbname,
            "POSTGRES_HOST": target.host,
            "POSTGRES_PORT": str(target.port),
            "POSTGRES_USER": target.user,
            "POSTGRES_PASSWORD": target.password,
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "APPLICATION_RECORDER_TOPIC": "ledger.library.pg_recorder:CopyApplicationRecorder",
            "CREATE_TABLE": "y",
            POOL_SIZE_KEY: str(url.pool_size),
        }
    assert url.sqlite_path is not None
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(url.sqlite_path),
        "SQLITE_LOCK_TIMEOUT": "30",
        "APPLICATION_RECORDER_TOPIC": (
            "ledger.library.sqlite_recorder:CheckedSQLiteApplicationRecorder"
        ),
        "CREATE_TABLE": "y",
    }
