"""The per-subject key store on both backends (SQLite file, PostgreSQL database)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import tuple_row

from ledger.domain.errors import InvalidCommand
from ledger.keystore import (
    KEY_SIZE_BYTES,
    LINKAGE_KEY_ID,
    TABLE,
    KeyStore,
    PostgresKeyStore,
    SqliteKeyStore,
    open_keystore,
)
from ledger.storage_url import StorageUrl

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RACERS = 8

OpenStore = Callable[[], KeyStore]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens stores on one fresh database (several, to act as several processes)."""
    opened: list[KeyStore] = []
    # Asked for now, not on first open, so the database outlives the stores' teardown below.
    pg_url: str | None = request.getfixturevalue("pg_url") if request.param == "postgres" else None

    def open_one() -> KeyStore:
        if pg_url is not None:
            store: KeyStore = PostgresKeyStore(pg_url)
        else:
            store = SqliteKeyStore(tmp_path / "keys.db")
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> KeyStore:
    return open_store()


def _raw_row(
    store: KeyStore, subject_id: str, kind: str = "m"
) -> tuple[bytes | None, object] | None:
    """(wrapped key, destroyed_at) straight from the table, past every cache."""
    query = f"SELECT wrapped, destroyed_at FROM {TABLE} WHERE name = "
    if isinstance(store, SqliteKeyStore):
        with closing(sqlite3.connect(store.path)) as conn:
            return conn.execute(query + "? AND kind = ?", (subject_id, kind)).fetchone()
    assert isinstance(store, PostgresKeyStore)
    with store._pool.connection() as conn:  # the shared pool reads rows as dicts
        cursor = conn.cursor(row_factory=tuple_row)
        return cursor.execute(query + "%s AND kind = %s", (subject_id, kind)).fetchone()


def test_key_is_created_on_first_use_and_then_stable(open_store: OpenStore) -> None:
    store = open_store()
    assert store.existing_key("acct-1") is None
    key = store.key_for("acct-1")
    assert key is not None and len(key) == KEY_SIZE_BYTES
    assert store.key_for("acct-1") == key
    assert store.existing_key("acct-1") == key
    assert open_store().key_for("acct-1") == key  # another process, same key
    assert store.key_for("acct-2") != key


def test_keys_for_batch(store: KeyStore) -> None:
    old = store.key_for("acct-old")
    store.key_for("acct-gone")
    store.destroy("acct-gone", AT)
    wanted = ["acct-new-2", "acct-old", "acct-gone", "acct-new-1", "acct-old"]
    keys = store.keys_for(wanted)
    assert list(keys) == ["acct-new-2", "acct-old", "acct-gone", "acct-new-1"]
    assert keys["acct-old"] == old
    assert keys["acct-gone"] is None
    assert keys["acct-new-1"] is not None and keys["acct-new-2"] is not None
    assert keys["acct-new-1"] != keys["acct-new-2"]
    store.forget_cache()
    assert store.keys_for(["acct-new-1"])["acct-new-1"] == keys["acct-new-1"]


def test_keys_for_large_batch(store: KeyStore) -> None:
    subjects = [f"acct-{n:06d}" for n in range(1_203)]
    keys = store.keys_for(subjects)
    assert len(keys) == len(subjects) and len(set(keys.values())) == len(subjects)
    store.forget_cache()
    assert store.keys_for(reversed(subjects)) == keys


def test_destroy_erases_and_never_recreates(open_store: OpenStore) -> None:
    store = open_store()
    store.key_for("acct-9")
    assert store.is_destroyed("acct-9") is False
    assert store.destroy("acct-9", AT) is True
    assert store.key_for("acct-9") is None
    assert store.keys_for(["acct-9"]) == {"acct-9": None}
    assert store.existing_key("acct-9") is None
    assert store.is_destroyed("acct-9") is True
    assert store.destroy("acct-9", AT) is False  # already gone
    row = _raw_row(store, "acct-9")
    assert row is not None and row[0] is None and row[1] is not None
    assert open_store().key_for("acct-9") is None  # not even from a fresh process


def test_destroy_of_unknown_subject_leaves_a_tombstone(store: KeyStore) -> None:
    assert store.destroy("acct-never", AT) is False
    assert store.is_destroyed("acct-never") is True
    assert store.key_for("acct-never") is None


def test_destroy_needs_an_aware_time(store: KeyStore) -> None:
    store.key_for("acct-1")
    with pytest.raises(InvalidCommand):
        store.destroy("acct-1", datetime(2024, 5, 1, 12, 0))
    assert store.key_for("acct-1") is not None


def test_other_process_destroy_is_seen_after_forget_cache(open_store: OpenStore) -> None:
    mine, theirs = open_store(), open_store()
    mine._cache_ttl_s = 3600.0  # this test is about forget_cache, not the cache's lifetime
    key = mine.key_for("acct-5")
    assert theirs.destroy("acct-5", AT) is True
    # Documented staleness: the cached key stays until the cache forgets it.
    assert mine.key_for("acct-5") == key
    assert mine.is_destroyed("acct-5") is True
    mine.forget_cache()
    assert mine.key_for("acct-5") is None


def test_racing_threads_get_one_key(open_store: OpenStore) -> None:
    stores = [open_store(), open_store()]  # two "processes", several threads each
    for round_no in range(5):
        subject_id = f"acct-race-{round_no}"
        barrier = threading.Barrier(RACERS)

        def take(
            n: int, subject_id: str = subject_id, barrier: threading.Barrier = barrier
        ) -> bytes | None:
            barrier.wait()
            return stores[n % 2].key_for(subject_id)

        with ThreadPoolExecutor(RACERS) as pool:
            keys = list(pool.map(take, range(RACERS)))
        assert keys[0] is not None
        assert set(keys) == {keys[0]}


def test_racing_batches_agree(open_store: OpenStore) -> None:
    stores = [open_store(), open_store()]
    subjects = [f"acct-batch-{n}" for n in range(200)]
    barrier = threading.Barrier(4)

    def take(n: int) -> dict[str, bytes | None]:
        barrier.wait()
        order = subjects if n % 2 else list(reversed(subjects))
        return stores[n % 2].keys_for(order)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(take, range(4)))
    assert all(result == results[0] for result in results)


def test_linkage_key_is_stable_across_reopen(open_store: OpenStore) -> None:
    first = open_store().linkage_key()
    assert len(first) == KEY_SIZE_BYTES
    assert open_store().linkage_key() == first
    with pytest.raises(InvalidCommand):
        open_store().key_for(LINKAGE_KEY_ID)
    with pytest.raises(InvalidCommand):
        open_store().destroy(LINKAGE_KEY_ID, AT)


@pytest.mark.parametrize("subject_id", ["", "acct:1", "a" * 129, "acct 1"])
def test_invalid_subject_ids_are_refused(store: KeyStore, subject_id: str) -> None:
    with pytest.raises(InvalidCommand):
        store.key_for(subject_id)


def test_cache_is_bounded(tmp_path: Path) -> None:
    with SqliteKeyStore(tmp_path / "keys.db", cache_max_entries=3) as store:
        keys = store.keys_for([f"acct-{n}" for n in range(10)])
        assert len(store._cache) <= 3
        assert store.key_for("acct-0") == keys["acct-0"]


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    with SqliteKeyStore(tmp_path / "keys.db") as store:
        store.key_for("acct-1")
    with closing(sqlite3.connect(tmp_path / "keys.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_open_keystore_sqlite_makes_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "var" / "nested" / "ledger.db"
    with open_keystore(StorageUrl.sqlite(path)) as store:
        assert isinstance(store, SqliteKeyStore)
        assert store.key_for("acct-1") is not None
    assert path.exists()


@pytest.mark.postgres
def test_open_keystore_postgres(pg_url: str) -> None:
    with open_keystore(StorageUrl.parse(pg_url)) as store:
        assert isinstance(store, PostgresKeyStore)
        assert store.key_for("acct-1") is not None


@pytest.mark.postgres
def test_postgres_table_creation_is_idempotent(pg_url: str) -> None:
    with PostgresKeyStore(pg_url) as first, PostgresKeyStore(pg_url) as second:
        assert first.key_for("acct-1") == second.key_for("acct-1")
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
    assert row is not None and row[0] == 1
