"""Per-data-subject keys, held outside the event log (DOMAIN.md section 7: crypto-shredding).

Each data subject (an account, a recipient) has one 32-byte AES key. Personal fields in events are
sealed under it; destroying the key erases them everywhere at once, while the events themselves,
and their integrity hashes, stay as they are.

``KeyStore`` is the interface a real KMS could implement: the public methods hold the rules
(validation, never re-creating a destroyed key, the in-process cache) and call four storage
primitives, which is all a backend provides. Two backends live here: ``SqliteKeyStore`` and
``PostgresKeyStore``, both on a table ``ledger_subject_keys``.

Limits of erasure in these two backends: the key is overwritten with NULL, but the database may
keep the old bytes for a while (PostgreSQL dead tuples until VACUUM, its WAL and backups; SQLite
pages are overwritten here with ``secure_delete`` and the WAL truncated after a destroy, but the
file system and backups are outside our reach). A KMS that destroys keys on its side avoids this.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
import psycopg.errors
from psycopg.rows import tuple_row

from ledger.domain import codes
from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.files import prepare_sqlite_file
from ledger.pg_pool import lease_for
from ledger.sqlite_tx import write_transaction
from ledger.storage_url import StorageUrl

KEY_SIZE_BYTES = 32
MAX_SUBJECT_ID_CHARS = 128
CACHE_MAX_ENTRIES = 100_000
SQLITE_BUSY_TIMEOUT_S = 30.0
SQLITE_CHECKPOINT_WAIT_MS = 1000
# SQLite limits the host parameters of one statement; stay well under the oldest default (999).
_SQLITE_IN_CHUNK = 500

# Contains ':', which no valid subject id may, so it can never collide with a real subject.
LINKAGE_KEY_ID = "__linkage__:v1"

TABLE = "ledger_subject_keys"

# Printable ASCII except ':' (the sealed-token separator), 1..128 characters.
_SUBJECT_ID_RE = re.compile(rf"[\x21-\x39\x3b-\x7e]{{1,{MAX_SUBJECT_ID_CHARS}}}")


class KeyStoreError(LedgerError):
    """The key store holds something it should not (e.g. a key of the wrong size)."""

    catalogued = codes.KEYSTORE_ERROR


def validate_subject_id(subject_id: str) -> str:
    """Return ``subject_id`` if it is a valid opaque subject id, else raise InvalidCommand."""
    if not isinstance(subject_id, str) or _SUBJECT_ID_RE.fullmatch(subject_id) is None:
        raise InvalidCommand(
            "subject_id",
            f"must be 1..{MAX_SUBJECT_ID_CHARS} printable ASCII characters without ':' or spaces",
        )
    return subject_id


def new_key() -> bytes:
    return os.urandom(KEY_SIZE_BYTES)


class KeyStore(ABC):
    """Per-subject AES keys, created on first use, destroyed on erasure, never re-created.

    Live keys are cached in-process (bounded; cleared when full) so sealing does not cost a
    database round trip. A destroy in this process evicts its entry at once; a destroy done by
    another process is seen here only once the entry goes (cache full, ``forget_cache()``, or a
    new process). Callers that must honour another process's erasure immediately (the erasure
    command itself, audits) call ``forget_cache()`` or ``is_destroyed()`` first.
    """

    def __init__(self, *, cache_max_entries: int = CACHE_MAX_ENTRIES) -> None:
        self._cache: dict[str, bytes] = {}
        self._cache_max_entries = cache_max_entries
        self._cache_lock = threading.Lock()
        # Bumped by every destroy: a read that started before it must not cache what it read.
        self._epoch = 0
        self._linkage_key: bytes | None = None

    # Public interface ----------------------------------------------------------------------

    def key_for(self, subject_id: str) -> bytes | None:
        """The subject's key, created on first use; None if it was destroyed (erased)."""
        cached = self._cache.get(subject_id)
        if cached is not None:
            # Only validated ids are ever cached: the hot path of sealing stays one lookup.
            return cached
        return self.keys_for([subject_id])[subject_id]

    def keys_for(self, subject_ids: Iterable[str]) -> dict[str, bytes | None]:
        """``key_for`` for many subjects in one storage round trip (bulk import)."""
        wanted = list(dict.fromkeys(validate_subject_id(s) for s in subject_ids))
        found: dict[str, bytes | None] = {}
        missing: list[str] = []
        for subject_id in wanted:
            cached = self._cache.get(subject_id)
            if cached is None:
                missing.append(subject_id)
            else:
                found[subject_id] = cached
        if missing:
            epoch = self._epoch
            loaded = self._load_or_create(sorted(missing), datetime.now(UTC))
            self._remember(loaded, epoch)
            found.update(loaded)
        return {subject_id: found[subject_id] for subject_id in wanted}

    def load_existing(self, subject_ids: Iterable[str]) -> None:
        """Cache the live keys of ``subject_ids`` that exist, in one round trip; never
        creates one (a key is made only when a command that passed its checks seals)."""
        wanted = sorted({validate_subject_id(s) for s in subject_ids} - self._cache.keys())
        if wanted:
            epoch = self._epoch
            self._remember(self._load(wanted), epoch)

    def existing_key(self, subject_id: str) -> bytes | None:
        """The subject's live key, or None if it never existed or was destroyed. Never creates."""
        validate_subject_id(subject_id)
        cached = self._cache.get(subject_id)
        if cached is not None:
            return cached
        epoch = self._epoch
        loaded = self._load([subject_id])
        self._remember(loaded, epoch)
        return loaded.get(subject_id)

    def destroy(self, subject_id: str, at: datetime) -> bool:
        """Destroy the subject's key (crypto-shredding); True if a live key existed.

        A subject that never had a key gets a tombstone, so no key is ever created for it later.
        """
        validate_subject_id(subject_id)
        if at.tzinfo is None:
            raise InvalidCommand("at", "must be timezone-aware")
        self._evict(subject_id)
        was_live = self._shred(subject_id, at.astimezone(UTC))
        self._evict(subject_id)
        return was_live

    def is_destroyed(self, subject_id: str) -> bool:
        """True if the subject's key was destroyed; always asks storage, never the cache."""
        return self._destroyed(validate_subject_id(subject_id))

    def linkage_key(self) -> bytes:
        """The one application-wide HMAC key for linkage hashes, created on first use."""
        if self._linkage_key is None:
            key = self._load_or_create([LINKAGE_KEY_ID], datetime.now(UTC)).get(LINKAGE_KEY_ID)
            if key is None:
                # Only a hand edit of the table gets here; hashes could no longer be linked.
                raise KeyStoreError("the linkage key is missing from the key store")
            self._linkage_key = key
        return self._linkage_key

    def forget_cache(self) -> None:
        """Drop every cached key, so destroys by other processes are seen from now on."""
        with self._cache_lock:
            self._epoch += 1
            self._cache.clear()

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Storage primitives (what a KMS backend implements) ------------------------------------

    @abstractmethod
    def _load_or_create(self, subject_ids: Sequence[str], now: datetime) -> dict[str, bytes | None]:
        """Create keys for subjects without a row (race-safe), then return every requested one.

        The value is None for a destroyed key. ``subject_ids`` is sorted and duplicate-free.
        """

    @abstractmethod
    def _load(self, subject_ids: Sequence[str]) -> dict[str, bytes | None]:
        """Return the rows that exist (None for destroyed keys); never create."""

    @abstractmethod
    def _shred(self, subject_id: str, at: datetime) -> bool:
        """Null the key and record ``at`` (or add a tombstone); True if a live key was there."""

    @abstractmethod
    def _destroyed(self, subject_id: str) -> bool:
        """True if the subject's row records a destruction."""

    # Cache ---------------------------------------------------------------------------------

    def _remember(self, loaded: dict[str, bytes | None], epoch: int) -> None:
        with self._cache_lock:
            if self._epoch != epoch:
                return
            for subject_id, key in loaded.items():
                if key is None:
                    continue
                if len(key) != KEY_SIZE_BYTES:
                    raise KeyStoreError(f"stored key of subject {subject_id} has a wrong size")
                if len(self._cache) >= self._cache_max_entries:
                    self._cache.clear()
                self._cache[subject_id] = key

    def _evict(self, subject_id: str) -> None:
        with self._cache_lock:
            self._epoch += 1
            self._cache.pop(subject_id, None)


def open_keystore(url: StorageUrl) -> KeyStore:
    """The keys in the ledger's own database: PostgreSQL or the SQLite file ``url`` names
    (made 0600 if missing: ``ledger.storage.opening`` decides beforehand whether a missing
    database may be made)."""
    if url.sqlite_path is not None:
        prepare_sqlite_file(url.sqlite_path)  # keys are the most private thing the ledger holds
        return SqliteKeyStore(url.sqlite_path)
    return PostgresKeyStore(url)


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqliteKeyStore(KeyStore):
    """Keys in a SQLite file: one connection behind a lock, WAL, writes in BEGIN IMMEDIATE.

    BEGIN IMMEDIATE takes the database's write lock up front, so creating and destroying keys is
    serialised across processes too (others wait up to the busy timeout).
    """

    def __init__(self, path: Path, *, cache_max_entries: int = CACHE_MAX_ENTRIES) -> None:
        super().__init__(cache_max_entries=cache_max_entries)
        self.path = path
        self._lock = threading.Lock()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        self._conn = sqlite3.connect(
            str(path),
            timeout=SQLITE_BUSY_TIMEOUT_S,
            check_same_thread=False,
            isolation_level=None,
        )
        self._conn.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        # Overwrite freed content with zeros, so a destroyed key does not linger in free pages.
        self._conn.execute("PRAGMA secure_delete = ON")
        self._conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            " subject_id TEXT PRIMARY KEY,"
            " key BLOB NULL,"
            " created_at TEXT NOT NULL,"
            " destroyed_at TEXT NULL)"
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, write_transaction(self._conn):
            yield self._conn

    def _select(self, conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, bytes | None]:
        found: dict[str, bytes | None] = {}
        for chunk in _chunks(ids, _SQLITE_IN_CHUNK):
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT subject_id, key FROM {TABLE} WHERE subject_id IN ({marks})", chunk
            )
            found.update((subject_id, key) for subject_id, key in rows)
        return found

    def _load_or_create(self, subject_ids: Sequence[str], now: datetime) -> dict[str, bytes | None]:
        created_at = now.isoformat()
        with self._write() as conn:
            conn.executemany(
                f"INSERT INTO {TABLE} (subject_id, key, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (subject_id) DO NOTHING",
                [(subject_id, new_key(), created_at) for subject_id in subject_ids],
            )
            return self._select(conn, subject_ids)

    def _load(self, subject_ids: Sequence[str]) -> dict[str, bytes | None]:
        with self._lock:
            return self._select(self._conn, subject_ids)

    def _shred(self, subject_id: str, at: datetime) -> bool:
        stamp = at.isoformat()
        with self._write() as conn:
            row = conn.execute(
                f"SELECT key IS NOT NULL FROM {TABLE} WHERE subject_id = ?", (subject_id,)
            ).fetchone()
            if row is None:
                conn.execute(
                    f"INSERT INTO {TABLE} (subject_id, key, created_at, destroyed_at)"
                    " VALUES (?, NULL, ?, ?)",
                    (subject_id, stamp, stamp),
                )
                was_live = False
            else:
                was_live = bool(row[0])
                if was_live:
                    conn.execute(
                        f"UPDATE {TABLE} SET key = NULL, destroyed_at = ? WHERE subject_id = ?",
                        (stamp, subject_id),
                    )
        if was_live:
            self._truncate_wal()
        return was_live

    def _truncate_wal(self) -> None:
        # The WAL still holds the page with the old key until checkpointed. Best effort with a
        # short wait: a long-lived reader elsewhere must not stall the erasure (the next
        # checkpoint finishes the job).
        with self._lock:
            self._conn.execute(f"PRAGMA busy_timeout = {SQLITE_CHECKPOINT_WAIT_MS}")
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._conn.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")

    def _destroyed(self, subject_id: str) -> bool:
        with self._lock:
            row = self._conn.execute(
                f"SELECT destroyed_at IS NOT NULL FROM {TABLE} WHERE subject_id = ?",
                (subject_id,),
            ).fetchone()
        return row is not None and bool(row[0])


_PG_CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " subject_id TEXT PRIMARY KEY,"
    " key BYTEA NULL,"
    " created_at TIMESTAMPTZ NOT NULL,"
    " destroyed_at TIMESTAMPTZ NULL)"
)

# Rows go in subject_id order, so two batches racing over the same subjects cannot deadlock.
_PG_INSERT_MANY = (
    f"INSERT INTO {TABLE} (subject_id, key, created_at)"
    " SELECT s, k, %s FROM unnest(%s::text[], %s::bytea[]) AS t(s, k) ORDER BY s"
    " ON CONFLICT (subject_id) DO NOTHING"
)

_PG_SELECT_MANY = f"SELECT subject_id, key FROM {TABLE} WHERE subject_id = ANY(%s)"

# One atomic statement, so a key created concurrently cannot slip past the destroy. The update
# applies only to a live key; xmax is non-zero exactly when the row returned was updated (not
# inserted), so: a row with true = a live key was destroyed, false = tombstone inserted, no row =
# already destroyed.
_PG_SHRED = (
    f"INSERT INTO {TABLE} AS k (subject_id, key, created_at, destroyed_at)"
    " VALUES (%(subject_id)s, NULL, %(at)s, %(at)s)"
    " ON CONFLICT (subject_id) DO UPDATE SET key = NULL, destroyed_at = EXCLUDED.destroyed_at"
    " WHERE k.key IS NOT NULL"
    " RETURNING (k.xmax <> 0) AS was_live"
)


class PostgresKeyStore(KeyStore):
    """Keys in PostgreSQL on the process's shared connection pool (ledger/pg_pool.py;
    autocommit: one statement, one transaction; INSERT-then-SELECT pairs are pipelined into
    one round trip). Rows are read as tuples, whatever the pool's row factory."""

    def __init__(
        self, url: StorageUrl | str, *, cache_max_entries: int = CACHE_MAX_ENTRIES
    ) -> None:
        super().__init__(cache_max_entries=cache_max_entries)
        self._pool = lease_for(StorageUrl.of(url))  # connects now if this process had no pool yet
        try:
            self._create_table()
        except BaseException:
            self._pool.close()
            raise

    def _create_table(self) -> None:
        # Another process creating it at the same moment raises one of these: IF NOT EXISTS is
        # not atomic in PostgreSQL.
        racing = (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable)
        with self._pool.connection() as conn, suppress(*racing):
            _tuples(conn).execute(_PG_CREATE_TABLE)

    def close(self) -> None:
        self._pool.close()

    def _load_or_create(self, subject_ids: Sequence[str], now: datetime) -> dict[str, bytes | None]:
        ids = list(subject_ids)
        keys = [new_key() for _ in ids]
        with self._pool.connection() as conn:
            with conn.pipeline():
                _tuples(conn).execute(_PG_INSERT_MANY, (now, ids, keys))
                cursor = _tuples(conn).execute(_PG_SELECT_MANY, (ids,))
            rows = cursor.fetchall()
        return {subject_id: _as_bytes(key) for subject_id, key in rows}

    def _load(self, subject_ids: Sequence[str]) -> dict[str, bytes | None]:
        with self._pool.connection() as conn:
            rows = _tuples(conn).execute(_PG_SELECT_MANY, (list(subject_ids),)).fetchall()
        return {subject_id: _as_bytes(key) for subject_id, key in rows}

    def _shred(self, subject_id: str, at: datetime) -> bool:
        with self._pool.connection() as conn:
            row = _tuples(conn).execute(_PG_SHRED, {"subject_id": subject_id, "at": at}).fetchone()
        return row is not None and bool(row[0])

    def _destroyed(self, subject_id: str) -> bool:
        with self._pool.connection() as conn:
            row = (
                _tuples(conn)
                .execute(
                    f"SELECT destroyed_at IS NOT NULL FROM {TABLE} WHERE subject_id = %s",
                    (subject_id,),
                )
                .fetchone()
            )
        return row is not None and bool(row[0])


def _tuples(conn: psycopg.Connection[Any]) -> psycopg.Cursor[tuple[Any, ...]]:
    return conn.cursor(row_factory=tuple_row)


def _as_bytes(value: bytes | memoryview | None) -> bytes | None:
    # psycopg returns bytea as bytes by default; a custom loader might hand back a memoryview.
    if value is None or isinstance(value, bytes):
        return value
    return bytes(value)
