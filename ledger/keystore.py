"""Per-data-subject keys, held outside the event log (DOMAIN.md section 7: crypto-shredding).

Each data subject (an account, a recipient) has 32-byte AES keys (issue 11, item 3): its
**main** key (``m``), for everything personal of it, and its **direct-identifier** key, for the
names, phones and addresses of its recipients, so de-identification can destroy the latter
alone. The direct-identifier key has **generations** (kinds ``d``, ``d2``, ``d3``, …): sealing
uses the newest live one (``current_direct``); de-identification first retires it
(``retire_direct``: the next generation becomes current, so the subject's new orders keep
working) and, once no process can still seal under it, destroys the retired ones
(``destroy_kinds``). ``destroy(subject_id, at, scope)`` destroys ``KeyScope.DIRECT`` (every
direct generation; the next seal makes a new one) or ``KeyScope.ALL`` (every key, the default:
erasure, PIPL 47; nothing is ever made for the subject again). A destroyed key is never
re-created.

Linkage keys (one per calendar year, ``__linkage__:YYYY``) and the application secret
(``__linkage__:v1``, API page tokens) live in the same table under names no subject id can take
(they contain ':').

Every key is stored **wrapped** by a master key held outside the database
(``ledger/key_wrapping.py``); each row records which master key wraps it, so ``ledger keys
rotate-master`` can re-wrap row by row and resume after a kill.

``KeyStore`` holds the rules (validation, never re-creating a destroyed key, wrapping, the
in-process cache) and calls storage primitives, which is all a backend provides. Two backends
live here: ``SqliteKeyStore`` and ``PostgresKeyStore``, on a table ``ledger_keys``.

Residues (README "What erasure reaches"): the row's wrapped key is overwritten with NULL; on
SQLite freed bytes are zeroed (``secure_delete``) and the WAL is checkpointed with TRUNCATE and
checked (``ShredIncomplete`` when a reader's snapshot keeps it, after a bounded wait); on
PostgreSQL the table is VACUUMed after a destroy (dead tuples), but WAL segments, archives and
backups keep the old wrapped bytes until they expire. Other processes forget a destroyed key
within ``CACHE_TTL_S``.
"""

from __future__ import annotations

import enum
import os
import re
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
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
from ledger.key_wrapping import (
    FileKeyWrapper,
    KeyWrapper,
    MasterKeyError,
    NoMasterKey,
    default_wrapper,
)
from ledger.pg_pool import lease_for
from ledger.sqlite_tx import write_transaction
from ledger.storage_url import StorageUrl

KEY_SIZE_BYTES = 32
MAX_SUBJECT_ID_CHARS = 128
CACHE_MAX_ENTRIES = 100_000
# Another process's destroy is honoured here at most this long after it (the cache's lifetime).
CACHE_TTL_S = 30.0
SQLITE_BUSY_TIMEOUT_S = 30.0
SQLITE_CHECKPOINT_WAIT_MS = 200
# How long a destroy keeps retrying the WAL truncation before it reports SHRED_INCOMPLETE.
SHRED_WAIT_S = 5.0
REWRAP_BATCH_ROWS = 200
# SQLite limits the host parameters of one statement; stay well under the oldest default (999).
_SQLITE_IN_CHUNK = 250

# Contains ':', which no valid subject id may, so it can never collide with a real subject.
LINKAGE_KEY_ID = "__linkage__:v1"
LINKAGE_PREFIX = "__linkage__:"

MAIN = "m"  # a subject's main key: every personal field not a direct identifier
DIRECT = "d"  # a subject's first direct-identifier key: recipients' names, phones, addresses
KINDS = (MAIN, DIRECT)
# Direct-identifier generations after the first: d2, d3, … (no leading zero, so one spelling).
_DIRECT_KIND_RE = re.compile(r"d(?:[2-9]|[1-9][0-9]{1,8})?")

TABLE = "ledger_keys"
LEGACY_TABLE = "ledger_subject_keys"  # raw keys, one per subject: migrated as main keys

Slot = tuple[str, str]  # (name, kind)
Stored = tuple[str, bytes]  # (master key id, wrapped key)

# Printable ASCII except ':' (the sealed-token separator), 1..128 characters.
_SUBJECT_ID_RE = re.compile(rf"[\x21-\x39\x3b-\x7e]{{1,{MAX_SUBJECT_ID_CHARS}}}")


class KeyScope(enum.Enum):
    """What a destroy reaches: the direct-identifier key alone (de-identification), or all of
    a subject's keys (erasure, PIPL 47)."""

    DIRECT = "direct"
    ALL = "all"

    @property
    def kinds(self) -> tuple[str, ...]:
        return (DIRECT,) if self is KeyScope.DIRECT else KINDS


class KeyStoreError(LedgerError):
    """The key store holds something it should not (e.g. a key of the wrong size)."""

    catalogued = codes.KEYSTORE_ERROR


class ShredIncomplete(LedgerError):
    """The key is destroyed in its table but its old bytes are still in the database's files
    (SQLite WAL kept by a reader's snapshot) after a bounded wait; rerun the destroy."""

    catalogued = codes.SHRED_INCOMPLETE


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


def is_direct_kind(kind: str) -> bool:
    """Whether ``kind`` names a direct-identifier key generation (``d``, ``d2``, ``d3``, …)."""
    return isinstance(kind, str) and _DIRECT_KIND_RE.fullmatch(kind) is not None


def direct_kind(generation: int) -> str:
    """The kind of direct-identifier generation ``generation`` (1-based): ``d``, ``d2``, …"""
    return DIRECT if generation == 1 else f"{DIRECT}{generation}"


def direct_generation(kind: str) -> int:
    """The generation number of a direct-identifier ``kind`` (``d`` is 1)."""
    return int(kind[1:] or 1)


def linkage_name(year: int) -> str:
    """The key store's name of the linkage key of calendar ``year`` (UTC)."""
    return f"{LINKAGE_PREFIX}{year:04d}"


def _context(slot: Slot) -> str:
    # What a wrapped key is bound to: a wrap copied to another row does not open.
    return f"{slot[0]}|{slot[1]}"


class KeyStore(ABC):
    """Per-subject AES keys, created on first use, destroyed on erasure, never re-created.

    Live keys are cached in-process for at most ``CACHE_TTL_S`` (bounded; cleared when full)
    so sealing does not cost a database round trip. A destroy in this process evicts at once;
    a destroy by another process is honoured here within ``CACHE_TTL_S``.
    """

    def __init__(
        self,
        *,
        wrapper: KeyWrapper | None = None,
        cache_max_entries: int = CACHE_MAX_ENTRIES,
        cache_ttl_s: float = CACHE_TTL_S,
    ) -> None:
        self.wrapper: KeyWrapper = wrapper if wrapper is not None else default_wrapper()
        self._cache: dict[Slot, tuple[bytes, float]] = {}
        self._cache_max_entries = cache_max_entries
        self._cache_ttl_s = cache_ttl_s
        self._cache_lock = threading.Lock()
        # Bumped by every destroy: a read that started before it must not cache what it read.
        self._epoch = 0
        # subject -> (its current direct-identifier kind, expiry): sealing's generation.
        self._current: dict[str, tuple[str, float]] = {}

    # Public interface ----------------------------------------------------------------------

    def key_for(self, subject_id: str, kind: str = MAIN) -> bytes | None:
        """The subject's key of ``kind`` (``MAIN`` or ``DIRECT``), created on first use; None
        if it was destroyed (erased or de-identified)."""
        cached = self._cached((subject_id, kind))
        if cached is not None:
            return cached
        return self.keys_for([subject_id], kind)[subject_id]

    def keys_for(self, subject_ids: Iterable[str], kind: str = MAIN) -> dict[str, bytes | None]:
        """``key_for`` for many subjects in one storage round trip (bulk import)."""
        _check_kind(kind)
        wanted = list(dict.fromkeys(validate_subject_id(s) for s in subject_ids))
        found = self._get([(s, kind) for s in wanted], create=True)
        return {subject_id: found.get((subject_id, kind)) for subject_id in wanted}

    def load_existing(self, subject_ids: Iterable[str]) -> None:
        """Cache the live keys of ``subject_ids`` that exist (every generation) and their
        current direct-identifier generation, in one round trip; never creates one (a key
        is made only when a command that passed its checks seals)."""
        wanted = sorted({validate_subject_id(s) for s in subject_ids})
        epoch = self._epoch
        rows = self._load_names(wanted)
        loaded = {slot: self._unwrap(slot, stored) for slot, stored in rows.items()}
        self._remember(loaded, epoch)
        for subject_id in wanted:
            kind = _current_kind(subject_id, rows, create=False)
            if kind is not None and loaded.get((subject_id, kind)) is not None:
                self._remember_current(subject_id, kind, epoch)

    def current_direct(self, subject_id: str, *, create: bool = True) -> tuple[str, bytes] | None:
        """The direct-identifier generation the subject's new data is sealed under, as
        ``(kind, key)``: its newest live generation; a new one (created) when it has none or
        the newest was destroyed (de-identified: PIPL 47(1)). None once the subject is erased
        (its main key destroyed), or, without ``create``, when no live generation exists."""
        validate_subject_id(subject_id)
        remembered = self._current.get(subject_id)
        if remembered is not None and remembered[1] >= time.monotonic():
            key = self._cached((subject_id, remembered[0]))
            if key is not None:
                return remembered[0], key
        epoch = self._epoch
        rows = self._load_names([subject_id])
        kind = _current_kind(subject_id, rows, create=create)
        if kind is None:
            return None
        key = self._get([(subject_id, kind)], create=create).get((subject_id, kind))
        if (
            key is not None
            and (subject_id, kind) not in rows
            and self._destroyed((subject_id, MAIN))
        ):
            # An erasure raced the new generation's creation: it must not outlive it.
            self._destroy_slots(subject_id, (kind,), datetime.now(UTC))
            key = None
        if key is None:
            return None
        self._remember_current(subject_id, kind, epoch)
        return kind, key

    def retire_direct(self, subject_id: str) -> list[str]:
        """Make a new direct-identifier generation current for the subject (its new orders
        are sealed under it from now on; other processes follow within ``CACHE_TTL_S``) and
        return every live generation now older than it: what de-identification destroys
        once no process can still seal under them (``destroy_kinds``). Empty when the
        subject has no live direct key (nothing to retire) or is erased."""
        validate_subject_id(subject_id)
        rows = self._load_names([subject_id])
        current = _current_kind(subject_id, rows, create=False)
        if current is None:
            return []
        successor = direct_kind(direct_generation(current) + 1)
        self._forget_current(subject_id)
        self._get([(subject_id, successor)], create=True)
        return _live_direct(subject_id, rows)

    def destroy_kinds(self, subject_id: str, kinds: Sequence[str], at: datetime) -> bool:
        """Destroy the subject's direct-identifier generations ``kinds`` (de-identification,
        PIPL 47(1)); True if one was live. Raises InvalidCommand for a kind that is not a
        direct generation (the main key goes only with an erasure, ``destroy``)."""
        validate_subject_id(subject_id)
        for kind in kinds:
            if not is_direct_kind(kind):
                raise InvalidCommand("kind", "must be a direct-identifier generation (d, d2, …)")
        if at.tzinfo is None:
            raise InvalidCommand("at", "must be timezone-aware")
        return bool(kinds) and self._destroy_slots(subject_id, tuple(kinds), at)

    def existing_key(self, subject_id: str, kind: str = MAIN) -> bytes | None:
        """The subject's live key, or None if it never existed or was destroyed. Never creates."""
        validate_subject_id(subject_id)
        _check_kind(kind)
        return self._get([(subject_id, kind)], create=False).get((subject_id, kind))

    def destroy(self, subject_id: str, at: datetime, scope: KeyScope = KeyScope.ALL) -> bool:
        """Destroy the subject's keys of ``scope`` (crypto-shredding); True if a live key was
        there. A subject without a key gets a tombstone, so none is ever created for it later.
        Raises ShredIncomplete if the destroyed bytes cannot be made gone from the database's
        files within ``SHRED_WAIT_S`` (the destroy itself stands; run it again)."""
        validate_subject_id(subject_id)
        if at.tzinfo is None:
            raise InvalidCommand("at", "must be timezone-aware")
        was_live = False
        while True:
            # Every live direct generation, and the first's tombstone at least. A generation
            # made while an erasure runs is destroyed by its next round (its maker also checks
            # the main key after making it), so none outlives the erasure.
            live = _live_direct(subject_id, self._load_names([subject_id]))
            kinds = sorted({*scope.kinds, *live})
            was_live = self._destroy_slots(subject_id, kinds, at) or was_live
            if scope is KeyScope.DIRECT or not _live_direct(
                subject_id, self._load_names([subject_id])
            ):
                return was_live

    def knows(self, subject_id: str) -> bool:
        """True if the store ever held a key of ``subject_id`` (live, or destroyed and kept
        as a tombstone): a data subject the ledger has sealed something for. Never creates."""
        return bool(self._load_names([validate_subject_id(subject_id)]))

    def is_destroyed(self, subject_id: str, scope: KeyScope = KeyScope.ALL) -> bool:
        """True if the subject's keys of ``scope`` were destroyed (``ALL``: its main key, i.e.
        erased; ``DIRECT``: its newest direct-identifier generation, i.e. no live key holds
        its direct identifiers until a new order makes the next); always asks storage."""
        subject_id = validate_subject_id(subject_id)
        if scope is KeyScope.ALL:
            return self._destroyed((subject_id, MAIN))
        rows = self._load_names([subject_id])
        kinds = [kind for (_, kind) in rows if is_direct_kind(kind)]
        newest = max(kinds, key=direct_generation, default=None)
        return newest is not None and rows[(subject_id, newest)] is None

    def kind_destroyed(self, subject_id: str, kind: str) -> bool:
        """True if the subject's key of ``kind`` (``m``, ``d``, ``d2``, …) was destroyed, or
        its main key was (an erasure reaches every kind); always asks storage, never the
        cache, so another process's destroy is seen at once."""
        _check_kind(kind)
        subject_id = validate_subject_id(subject_id)
        return self._destroyed((subject_id, MAIN)) or (
            kind != MAIN and self._destroyed((subject_id, kind))
        )

    def linkage_key(self) -> bytes:
        """The application-wide secret (API page tokens), created on first use. It hashes no
        personal data any more: linkage uses the per-year keys (``year_linkage_key``)."""
        return self._special(LINKAGE_KEY_ID, create=True)

    def year_linkage_key(self, year: int, *, create: bool = True) -> bytes | None:
        """The linkage HMAC key of calendar ``year`` (UTC); None once it has expired."""
        found = self._get([(linkage_name(year), MAIN)], create=create)
        return found.get((linkage_name(year), MAIN))

    def expire_linkage_keys(self, before_year: int, at: datetime) -> list[int]:
        """Destroy every linkage key of a year before ``before_year``; the years destroyed now
        (idempotent: a second run destroys nothing)."""
        done = []
        for name in self._names_with_prefix(LINKAGE_PREFIX):
            year_text = name.removeprefix(LINKAGE_PREFIX)
            expired = year_text.isdigit() and int(year_text) < before_year
            if expired and self._destroy_slots(name, (MAIN,), at):
                done.append(int(year_text))
        return sorted(done)

    def forget_cache(self) -> None:
        """Drop every cached key, so destroys by other processes are seen from now on."""
        with self._cache_lock:
            self._epoch += 1
            self._cache.clear()
            self._current.clear()

    def rewrap_all(self, progress: Callable[[int], None] | None = None) -> int:
        """Re-wrap every live key not wrapped by the wrapper's current master key; the number
        re-wrapped. Each row is switched on its own (compare-and-set on its master key id), so
        a run killed mid-way is finished by running it again."""
        target = self.wrapper.current_id()
        total = 0
        while True:
            rows = self._rows_not_wrapped_by(target, REWRAP_BATCH_ROWS)
            if not rows:
                return total
            swaps = []
            for slot, stored in rows:
                key = self.wrapper.unwrap(stored[0], stored[1], _context(slot))
                swaps.append((slot, stored[0], self.wrapper.wrap(key, _context(slot))))
            self._swap_wraps(swaps)
            total += len(rows)
            if progress is not None:
                progress(len(rows))

    def check_master_key(self) -> None:
        """Raises MasterKeyError unless the stored keys open under the wrapper's master keys:
        a store opened with the wrong or a lost master key file fails now, with the file
        named, not at the first unseal. A master key file just made for a store that already
        holds keys is removed again (it would wrap new keys under a key no one expects)."""
        if getattr(self.wrapper, "created", False) and self._count_live() > 0:
            path = getattr(self.wrapper, "path", None)
            if isinstance(path, Path):
                path.unlink(missing_ok=True)
            raise MasterKeyError(
                f"master key file {path} is missing but the database holds wrapped keys: "
                "restore the file (or set LEDGER_MASTER_KEY to it)"
            )
        if isinstance(self.wrapper, FileKeyWrapper) and self.wrapper.created:
            self.wrapper.announce_created()
        for slot, stored in self._rows_not_wrapped_by(self.wrapper.current_id(), 1):
            self.wrapper.unwrap(stored[0], stored[1], _context(slot))

    def count_wrapped_by(self, master_id: str) -> int:
        """How many live keys master key ``master_id`` wraps (what retiring it would lose)."""
        return self._count_live(master_id)

    def count_live(self) -> int:
        """How many live keys the store holds (rotate-master's progress bar total)."""
        return self._count_live()

    @abstractmethod
    def compact(self) -> None:
        """Rewrite the key table's storage so destroyed keys' old bytes go (VACUUM)."""

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
    def _load_or_create(
        self, slots: Sequence[Slot], made: dict[Slot, Stored], now: datetime
    ) -> dict[Slot, Stored | None]:
        """Insert ``made`` for slots without a row (race-safe), then return every requested
        one (None for a destroyed key). ``slots`` is sorted and duplicate-free."""

    @abstractmethod
    def _load(self, slots: Sequence[Slot]) -> dict[Slot, Stored | None]:
        """Return the rows that exist (None for destroyed keys); never create."""

    @abstractmethod
    def _load_names(self, names: Sequence[str]) -> dict[Slot, Stored | None]:
        """Every row of ``names`` (every kind; None for destroyed keys); never create."""

    @abstractmethod
    def _shred(self, name: str, kinds: Sequence[str], at: datetime) -> bool:
        """Null the keys and record ``at`` (or add tombstones); True if a live key was there."""

    @abstractmethod
    def _destroyed(self, slot: Slot) -> bool:
        """True if the slot's row records a destruction."""

    @abstractmethod
    def _purge_residues(self) -> None:
        """Make destroyed bytes gone from the database's files, as far as the engine allows."""

    @abstractmethod
    def _names_with_prefix(self, prefix: str) -> list[str]:
        """Names of live rows starting with ``prefix``."""

    @abstractmethod
    def _rows_not_wrapped_by(self, master_id: str, limit: int) -> list[tuple[Slot, Stored]]:
        """Up to ``limit`` live rows wrapped by another master key than ``master_id``."""

    @abstractmethod
    def _swap_wraps(self, swaps: Sequence[tuple[Slot, str, Stored]]) -> None:
        """In one transaction, replace each (slot, old master id, new wrap)'s wrap if the slot
        is still live and wrapped by that old master key (a compare-and-set per row)."""

    @abstractmethod
    def _count_live(self, master_id: str | None = None) -> int:
        """Number of live keys (wrapped by ``master_id`` if given)."""

    # Rules over the primitives ---------------------------------------------------------------

    def _destroy_slots(self, name: str, kinds: Sequence[str], at: datetime) -> bool:
        for kind in kinds:
            self._evict((name, kind))
        was_live = self._shred(name, kinds, at.astimezone(UTC))
        for kind in kinds:
            self._evict((name, kind))
        if was_live:
            self._purge_residues()
        return was_live

    def _special(self, name: str, *, create: bool) -> bytes:
        key = self._get([(name, MAIN)], create=create).get((name, MAIN))
        if key is None:
            # Only a hand edit of the table gets here.
            raise KeyStoreError(f"the key {name} is missing from the key store")
        return key

    def _get(self, slots: Sequence[Slot], *, create: bool) -> dict[Slot, bytes | None]:
        found: dict[Slot, bytes | None] = {}
        missing: list[Slot] = []
        for slot in slots:
            cached = self._cached(slot)
            if cached is None:
                missing.append(slot)
            else:
                found[slot] = cached
        if missing:
            epoch = self._epoch
            wanted = sorted(set(missing))
            if create:
                made = {slot: self.wrapper.wrap(new_key(), _context(slot)) for slot in wanted}
                rows = self._load_or_create(wanted, made, datetime.now(UTC))
            else:
                rows = self._load(wanted)
            loaded = {slot: self._unwrap(slot, stored) for slot, stored in rows.items()}
            self._remember(loaded, epoch)
            found.update(loaded)
        return found

    def _unwrap(self, slot: Slot, stored: Stored | None) -> bytes | None:
        if stored is None:
            return None
        key = self.wrapper.unwrap(stored[0], stored[1], _context(slot))
        if len(key) != KEY_SIZE_BYTES:
            raise KeyStoreError(f"stored key {slot[0]}/{slot[1]} has a wrong size")
        return key

    # Cache ---------------------------------------------------------------------------------

    def _cached(self, slot: Slot) -> bytes | None:
        entry = self._cache.get(slot)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def _remember(self, loaded: dict[Slot, bytes | None], epoch: int) -> None:
        expires = time.monotonic() + self._cache_ttl_s
        with self._cache_lock:
            if self._epoch != epoch:
                return
            for slot, key in loaded.items():
                if key is None:
                    continue
                if len(self._cache) >= self._cache_max_entries:
                    self._cache.clear()
                self._cache[slot] = (key, expires)

    def _evict(self, slot: Slot) -> None:
        with self._cache_lock:
            self._epoch += 1
            self._cache.pop(slot, None)
            self._current.pop(slot[0], None)

    def _remember_current(self, subject_id: str, kind: str, epoch: int) -> None:
        with self._cache_lock:
            if self._epoch != epoch:
                return
            if len(self._current) >= self._cache_max_entries:
                self._current.clear()
            self._current[subject_id] = (kind, time.monotonic() + self._cache_ttl_s)

    def _forget_current(self, subject_id: str) -> None:
        with self._cache_lock:
            self._epoch += 1
            self._current.pop(subject_id, None)


def _check_kind(kind: str) -> None:
    if kind != MAIN and not is_direct_kind(kind):
        raise InvalidCommand("kind", "must be m (main) or a direct-identifier kind (d, d2, …)")


def _live_direct(subject_id: str, rows: dict[Slot, Stored | None]) -> list[str]:
    """The subject's live direct-identifier generations among ``rows``, oldest first."""
    kinds = [k for (n, k), stored in rows.items() if n == subject_id and stored is not None]
    return sorted((k for k in kinds if is_direct_kind(k)), key=direct_generation)


def _current_kind(subject_id: str, rows: dict[Slot, Stored | None], create: bool) -> str | None:
    """Which direct generation the subject seals under, from its rows: None once erased (main
    key destroyed); the newest if live; else (none yet, or the newest destroyed) the next,
    if ``create``."""
    if (subject_id, MAIN) in rows and rows[(subject_id, MAIN)] is None:
        return None
    kinds = [k for (n, k) in rows if n == subject_id and is_direct_kind(k)]
    newest = max(kinds, key=direct_generation, default=None)
    if newest is not None and rows[(subject_id, newest)] is not None:
        return newest
    if not create:
        return None
    return DIRECT if newest is None else direct_kind(direct_generation(newest) + 1)


def open_keystore(url: StorageUrl, wrapper: KeyWrapper | None = None) -> KeyStore:
    """The keys in the ledger's own database: PostgreSQL or the SQLite file ``url`` names
    (made 0600 if missing: ``ledger.storage.opening`` decides beforehand whether a missing
    database may be made), wrapped by ``wrapper`` (default: the master key file). A master
    keyring file records the database (without password) as one of its users, so retiring a
    master key version can check every database it serves (ledger/key_admin.py).
    Raises MasterKeyError if the master key cannot be read."""
    wrapper = wrapper if wrapper is not None else default_wrapper()
    if url.sqlite_path is not None:
        prepare_sqlite_file(url.sqlite_path)  # keys are the most private thing the ledger holds
        store: KeyStore = SqliteKeyStore(url.sqlite_path, wrapper=wrapper)
    else:
        store = PostgresKeyStore(url, wrapper=wrapper)
    try:
        if not isinstance(wrapper, NoMasterKey):
            store.check_master_key()
        if isinstance(wrapper, FileKeyWrapper):
            wrapper.register(url.without_password)
    except BaseException:
        store.close()
        raise
    return store


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqliteKeyStore(KeyStore):
    """Keys in a SQLite file: one connection behind a lock, WAL, writes in BEGIN IMMEDIATE.

    BEGIN IMMEDIATE takes the database's write lock up front, so creating and destroying keys is
    serialised across processes too (others wait up to the busy timeout).
    """

    def __init__(
        self,
        path: Path,
        *,
        wrapper: KeyWrapper | None = None,
        cache_max_entries: int = CACHE_MAX_ENTRIES,
        cache_ttl_s: float = CACHE_TTL_S,
        shred_wait_s: float = SHRED_WAIT_S,
    ) -> None:
        super().__init__(
            wrapper=wrapper, cache_max_entries=cache_max_entries, cache_ttl_s=cache_ttl_s
        )
        self.path = path
        self._shred_wait_s = shred_wait_s
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
            " name TEXT NOT NULL,"
            " kind TEXT NOT NULL,"
            " wrapped BLOB NULL,"
            " master_key_id TEXT NULL,"
            " created_at TEXT NOT NULL,"
            " destroyed_at TEXT NULL,"
            " PRIMARY KEY (name, kind))"
        )
        self._migrate_legacy()

    def _migrate_legacy(self) -> None:
        """Raw keys of the first format become wrapped main keys; the old table goes."""
        with self._write() as conn:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEGACY_TABLE,)
            ).fetchone()
            if exists is None:
                return
            rows = conn.execute(
                f"SELECT subject_id, key, created_at, destroyed_at FROM {LEGACY_TABLE}"
            ).fetchall()
            for name, key, created_at, destroyed_at in rows:
                master_id, wrapped = (
                    (None, None) if key is None else self.wrapper.wrap(key, _context((name, MAIN)))
                )
                conn.execute(
                    f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (name, MAIN, wrapped, master_id, created_at, destroyed_at),
                )
            conn.execute(f"DROP TABLE {LEGACY_TABLE}")
        self._purge_residues()  # the raw keys' pages: zeroed in the WAL, then checkpointed

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, write_transaction(self._conn):
            yield self._conn

    def _select(self, conn: sqlite3.Connection, slots: Sequence[Slot]) -> dict[Slot, Stored | None]:
        found: dict[Slot, Stored | None] = {}
        for chunk in _chunks(slots, _SQLITE_IN_CHUNK):
            marks = ",".join("(?, ?)" for _ in chunk)
            params = [part for slot in chunk for part in slot]
            rows = conn.execute(
                f"SELECT name, kind, master_key_id, wrapped FROM {TABLE}"
                f" WHERE (name, kind) IN (VALUES {marks})",
                params,
            )
            for name, kind, master_id, wrapped in rows:
                found[(name, kind)] = None if wrapped is None else (master_id, bytes(wrapped))
        return found

    def _load_or_create(
        self, slots: Sequence[Slot], made: dict[Slot, Stored], now: datetime
    ) -> dict[Slot, Stored | None]:
        created_at = now.isoformat()
        with self._write() as conn:
            conn.executemany(
                f"INSERT INTO {TABLE} (name, kind, wrapped, master_key_id, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name, kind) DO NOTHING",
                [(s[0], s[1], made[s][1], made[s][0], created_at) for s in slots],
            )
            return self._select(conn, slots)

    def _load(self, slots: Sequence[Slot]) -> dict[Slot, Stored | None]:
        with self._lock:
            return self._select(self._conn, slots)

    def _load_names(self, names: Sequence[str]) -> dict[Slot, Stored | None]:
        found: dict[Slot, Stored | None] = {}
        with self._lock:
            for chunk in _chunks(names, _SQLITE_IN_CHUNK):
                marks = ",".join("?" for _ in chunk)
                rows = self._conn.execute(
                    f"SELECT name, kind, master_key_id, wrapped FROM {TABLE}"
                    f" WHERE name IN ({marks})",
                    list(chunk),
                )
                for name, kind, master_id, wrapped in rows:
                    found[(name, kind)] = None if wrapped is None else (master_id, bytes(wrapped))
        return found

    def _shred(self, name: str, kinds: Sequence[str], at: datetime) -> bool:
        stamp = at.isoformat()
        was_live = False
        with self._write() as conn:
            for kind in kinds:
                row = conn.execute(
                    f"SELECT destroyed_at IS NULL FROM {TABLE} WHERE name = ? AND kind = ?",
                    (name, kind),
                ).fetchone()
                if row is None:
                    conn.execute(
                        f"INSERT INTO {TABLE} (name, kind, created_at, destroyed_at)"
                        " VALUES (?, ?, ?, ?)",
                        (name, kind, stamp, stamp),
                    )
                elif row[0]:
                    was_live = True
                    conn.execute(
                        f"UPDATE {TABLE} SET wrapped = NULL, master_key_id = NULL,"
                        " destroyed_at = ? WHERE name = ? AND kind = ?",
                        (stamp, name, kind),
                    )
        return was_live

    def _purge_residues(self) -> None:
        """Checkpoint the WAL with TRUNCATE until it is empty: the WAL holds the page with the
        old wrapped key until then. A reader's snapshot elsewhere blocks it; retried for
        ``SHRED_WAIT_S``, then ShredIncomplete (the next destroy or ``keys compact`` finishes)."""
        deadline = time.monotonic() + self._shred_wait_s
        wal = Path(f"{self.path}-wal")
        while True:
            with self._lock:
                self._conn.execute(f"PRAGMA busy_timeout = {SQLITE_CHECKPOINT_WAIT_MS}")
                try:
                    busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    self._conn.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            if busy == 0:  # every frame checkpointed and the file truncated, atomically
                return
            if time.monotonic() >= deadline:
                raise ShredIncomplete(
                    "the key is destroyed, but another connection's read snapshot keeps its "
                    f"old bytes in {wal.name}: close long readers and run the destroy or "
                    "'ledger keys compact' again"
                )
            time.sleep(0.05)

    def compact(self) -> None:
        with self._lock:
            self._conn.execute("VACUUM")
        self._purge_residues()

    def _destroyed(self, slot: Slot) -> bool:
        with self._lock:
            row = self._conn.execute(
                f"SELECT destroyed_at IS NOT NULL FROM {TABLE} WHERE name = ? AND kind = ?", slot
            ).fetchone()
        return row is not None and bool(row[0])

    def _names_with_prefix(self, prefix: str) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT name FROM {TABLE} WHERE substr(name, 1, ?) = ? AND wrapped IS NOT NULL",
                (len(prefix), prefix),
            ).fetchall()
        return [name for (name,) in rows]

    def _rows_not_wrapped_by(self, master_id: str, limit: int) -> list[tuple[Slot, Stored]]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT name, kind, master_key_id, wrapped FROM {TABLE}"
                " WHERE wrapped IS NOT NULL AND master_key_id <> ? ORDER BY name, kind LIMIT ?",
                (master_id, limit),
            ).fetchall()
        return [((n, k), (m, bytes(w))) for n, k, m, w in rows]

    def _swap_wraps(self, swaps: Sequence[tuple[Slot, str, Stored]]) -> None:
        with self._write() as conn:
            conn.executemany(
                f"UPDATE {TABLE} SET master_key_id = ?, wrapped = ?"
                " WHERE name = ? AND kind = ? AND master_key_id = ? AND wrapped IS NOT NULL",
                [(new[0], new[1], slot[0], slot[1], old) for slot, old, new in swaps],
            )

    def _count_live(self, master_id: str | None = None) -> int:
        with self._lock:
            (count,) = self._conn.execute(
                f"SELECT count(*) FROM {TABLE} WHERE wrapped IS NOT NULL"
                " AND coalesce(master_key_id = ?, TRUE)",
                (master_id,),
            ).fetchone()
        return int(count)


_PG_CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " name TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " wrapped BYTEA NULL,"
    " master_key_id TEXT NULL,"
    " created_at TIMESTAMPTZ NOT NULL,"
    " destroyed_at TIMESTAMPTZ NULL,"
    " PRIMARY KEY (name, kind))"
)

# Rows go in key order, so two batches racing over the same subjects cannot deadlock.
_PG_INSERT_MANY = (
    f"INSERT INTO {TABLE} (name, kind, wrapped, master_key_id, created_at)"
    " SELECT n, k, w, m, %s FROM unnest(%s::text[], %s::text[], %s::bytea[], %s::text[])"
    " AS t(n, k, w, m) ORDER BY n, k"
    " ON CONFLICT (name, kind) DO NOTHING"
)

_PG_SELECT_MANY = (
    f"SELECT name, kind, master_key_id, wrapped FROM {TABLE}"
    " WHERE (name, kind) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
)

# One atomic statement, so a key created concurrently cannot slip past the destroy. The update
# applies only to a live key; xmax is non-zero exactly when the row returned was updated (not
# inserted): true = a live key was destroyed, false = tombstone inserted, no row = already gone.
_PG_SHRED = (
    f"INSERT INTO {TABLE} AS k (name, kind, created_at, destroyed_at)"
    " SELECT %(name)s, kind, %(at)s, %(at)s FROM unnest(%(kinds)s::text[]) AS t(kind)"
    " ORDER BY kind"
    " ON CONFLICT (name, kind) DO UPDATE SET wrapped = NULL, master_key_id = NULL,"
    " destroyed_at = EXCLUDED.destroyed_at"
    " WHERE k.destroyed_at IS NULL"
    " RETURNING (k.xmax <> 0) AS was_live"
)


class PostgresKeyStore(KeyStore):
    """Keys in PostgreSQL on the process's shared connection pool (ledger/pg_pool.py;
    autocommit: one statement, one transaction; INSERT-then-SELECT pairs are pipelined into
    one round trip). Rows are read as tuples, whatever the pool's row factory."""

    def __init__(
        self,
        url: StorageUrl | str,
        *,
        wrapper: KeyWrapper | None = None,
        cache_max_entries: int = CACHE_MAX_ENTRIES,
        cache_ttl_s: float = CACHE_TTL_S,
    ) -> None:
        super().__init__(
            wrapper=wrapper, cache_max_entries=cache_max_entries, cache_ttl_s=cache_ttl_s
        )
        self._url = StorageUrl.of(url)
        self._pool = lease_for(self._url)  # connects now if this process had no pool yet
        try:
            self._create_table()
            self._migrate_legacy()
        except BaseException:
            self._pool.close()
            raise

    def _create_table(self) -> None:
        # Another process creating it at the same moment raises one of these: IF NOT EXISTS is
        # not atomic in PostgreSQL.
        racing = (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable)
        with self._pool.connection() as conn, suppress(*racing):
            _tuples(conn).execute(_PG_CREATE_TABLE)

    def _migrate_legacy(self) -> None:
        """Raw keys of the first format become wrapped main keys; the old table goes."""
        with self._pool.connection() as conn:
            if _tuples(conn).execute("SELECT to_regclass(%s)", (LEGACY_TABLE,)).fetchone() in (
                None,
                (None,),
            ):
                return
            with conn.transaction():
                cur = _tuples(conn)
                cur.execute(f"LOCK TABLE {LEGACY_TABLE} IN ACCESS EXCLUSIVE MODE")
                rows = cur.execute(
                    f"SELECT subject_id, key, created_at, destroyed_at FROM {LEGACY_TABLE}"
                ).fetchall()
                for name, key, created_at, destroyed_at in rows:
                    master_id, wrapped = (
                        (None, None)
                        if key is None
                        else self.wrapper.wrap(bytes(key), _context((name, MAIN)))
                    )
                    cur.execute(
                        f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT DO NOTHING",
                        (name, MAIN, wrapped, master_id, created_at, destroyed_at),
                    )
                cur.execute(f"DROP TABLE {LEGACY_TABLE}")
        self._purge_residues()

    def close(self) -> None:
        self._pool.close()

    def _load_or_create(
        self, slots: Sequence[Slot], made: dict[Slot, Stored], now: datetime
    ) -> dict[Slot, Stored | None]:
        names, kinds = [s[0] for s in slots], [s[1] for s in slots]
        wraps, masters = [made[s][1] for s in slots], [made[s][0] for s in slots]
        with self._pool.connection() as conn:
            with conn.pipeline():
                _tuples(conn).execute(_PG_INSERT_MANY, (now, names, kinds, wraps, masters))
                cursor = _tuples(conn).execute(_PG_SELECT_MANY, (names, kinds))
            rows = cursor.fetchall()
        return _stored_rows(rows)

    def _load(self, slots: Sequence[Slot]) -> dict[Slot, Stored | None]:
        names, kinds = [s[0] for s in slots], [s[1] for s in slots]
        with self._pool.connection() as conn:
            rows = _tuples(conn).execute(_PG_SELECT_MANY, (names, kinds)).fetchall()
        return _stored_rows(rows)

    def _load_names(self, names: Sequence[str]) -> dict[Slot, Stored | None]:
        query = f"SELECT name, kind, master_key_id, wrapped FROM {TABLE} WHERE name = ANY(%s)"
        with self._pool.connection() as conn:
            rows = _tuples(conn).execute(query, (list(names),)).fetchall()
        return _stored_rows(rows)

    def _shred(self, name: str, kinds: Sequence[str], at: datetime) -> bool:
        params = {"name": name, "at": at, "kinds": list(kinds)}
        with self._pool.connection() as conn:
            rows = _tuples(conn).execute(_PG_SHRED, params).fetchall()
        return any(bool(row[0]) for row in rows)

    def _purge_residues(self) -> None:
        # The old row version is a dead tuple until VACUUM; VACUUM cannot run inside a
        # transaction block, which the pool's autocommit connections are not in.
        with self._pool.connection() as conn:
            conn.execute(f"VACUUM {TABLE}")

    def compact(self) -> None:
        with self._pool.connection() as conn:
            conn.execute(f"VACUUM FULL {TABLE}")

    def _destroyed(self, slot: Slot) -> bool:
        with self._pool.connection() as conn:
            row = (
                _tuples(conn)
                .execute(
                    f"SELECT destroyed_at IS NOT NULL FROM {TABLE} WHERE name = %s AND kind = %s",
                    slot,
                )
                .fetchone()
            )
        return row is not None and bool(row[0])

    def _names_with_prefix(self, prefix: str) -> list[str]:
        with self._pool.connection() as conn:
            rows = (
                _tuples(conn)
                .execute(
                    f"SELECT name FROM {TABLE} WHERE starts_with(name, %s) AND wrapped IS NOT NULL",
                    (prefix,),
                )
                .fetchall()
            )
        return [name for (name,) in rows]

    def _rows_not_wrapped_by(self, master_id: str, limit: int) -> list[tuple[Slot, Stored]]:
        with self._pool.connection() as conn:
            rows = (
                _tuples(conn)
                .execute(
                    f"SELECT name, kind, master_key_id, wrapped FROM {TABLE}"
                    " WHERE wrapped IS NOT NULL AND master_key_id <> %s"
                    " ORDER BY name, kind LIMIT %s",
                    (master_id, limit),
                )
                .fetchall()
            )
        return [((n, k), (m, bytes(w))) for n, k, m, w in rows]

    def _swap_wraps(self, swaps: Sequence[tuple[Slot, str, Stored]]) -> None:
        with self._pool.connection() as conn, conn.transaction():
            _tuples(conn).executemany(
                f"UPDATE {TABLE} SET master_key_id = %s, wrapped = %s WHERE name = %s"
                " AND kind = %s AND master_key_id = %s AND wrapped IS NOT NULL",
                [(new[0], new[1], slot[0], slot[1], old) for slot, old, new in swaps],
            )

    def _count_live(self, master_id: str | None = None) -> int:
        with self._pool.connection() as conn:
            row = (
                _tuples(conn)
                .execute(
                    f"SELECT count(*) FROM {TABLE} WHERE wrapped IS NOT NULL"
                    " AND coalesce(master_key_id = %s::text, TRUE)",
                    (master_id,),
                )
                .fetchone()
            )
        return int(row[0]) if row else 0


def _tuples(conn: psycopg.Connection[Any]) -> psycopg.Cursor[tuple[Any, ...]]:
    return conn.cursor(row_factory=tuple_row)


def _stored_rows(rows: Iterable[tuple[Any, ...]]) -> dict[Slot, Stored | None]:
    # psycopg returns bytea as bytes by default; a custom loader might hand back a memoryview.
    return {
        (name, kind): None if wrapped is None else (master_id, bytes(wrapped))
        for name, kind, master_id, wrapped in rows
    }
