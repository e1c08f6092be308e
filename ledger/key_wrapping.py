"""Wrapping data keys under a key-encryption key held outside the database (issue 11, item 6).

Every key the key store holds (subjects' keys, linkage keys) is stored wrapped: AES-256-GCM under
a master key, with associated data naming the row it belongs to, so a wrapped key copied to
another row does not open. The database alone therefore reveals no key; whoever also holds the
master key file does (the brute-force test assumes an attacker with both).

``KeyWrapper`` is the interface a KMS could implement (wrap, unwrap, which master key is
current). ``FileKeyWrapper`` reads a 32-byte master key file named by ``LEDGER_MASTER_KEY``
(default ``$XDG_DATA_HOME/mall-ledger/master.key``, XDG Base Directory spec), created 0600 on
first use with a warning. ``ledger keys rotate-master`` writes the next master key beside it
(``master.key.next``) and re-wraps row by row; until it finishes both files are read, so a run
killed mid-way is resumed by running it again.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.domain import codes
from ledger.domain.errors import LedgerError

MASTER_KEY_SETTING = "LEDGER_MASTER_KEY"
MASTER_KEY_SIZE_BYTES = 32
WRAP_NONCE_SIZE_BYTES = 12
NEXT_SUFFIX = ".next"
_ID_LABEL = b"mall-ledger/master-key-id/v1"
_AAD_LABEL = "mall-ledger/wrapped-key/v1"

log = logging.getLogger(__name__)


class MasterKeyError(LedgerError):
    """The master key file is missing, unreadable, the wrong size, or not the one that wrapped
    the stored keys (the message names the file, never key material)."""

    catalogued = codes.MASTER_KEY_ERROR


class KeyWrapper(Protocol):
    """Wraps and unwraps data keys; what a KMS client would implement."""

    def current_id(self) -> str:
        """The id of the master key new wraps use (stored beside each wrapped key)."""
        ...

    def wrap(self, key: bytes, context: str) -> tuple[str, bytes]:
        """(master key id, wrapped bytes) of ``key`` bound to ``context`` (the row's name)."""
        ...

    def unwrap(self, master_id: str, wrapped: bytes, context: str) -> bytes:
        """The key; raises MasterKeyError if ``master_id`` is not held or the wrap fails."""
        ...


def master_key_id(master_key: bytes) -> str:
    """16 hex characters naming a master key without revealing it (SHA-256 of a label + key)."""
    return hashlib.sha256(_ID_LABEL + master_key).hexdigest()[:16]


def default_master_key_path(env: dict[str, str] | None = None) -> Path:
    """``LEDGER_MASTER_KEY``, else ``$XDG_DATA_HOME/mall-ledger/master.key`` (XDG Base
    Directory: ``~/.local/share`` when ``XDG_DATA_HOME`` is unset or empty)."""
    source = os.environ if env is None else env
    named = source.get(MASTER_KEY_SETTING) or ""
    if named:
        return Path(named)
    data_home = source.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "mall-ledger" / "master.key"


def _context_aad(context: str) -> bytes:
    return f"{_AAD_LABEL}|{context}".encode()


def read_master_key(path: Path) -> bytes:
    """The 32 bytes in ``path``; MasterKeyError naming the file otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MasterKeyError(f"master key file {path} cannot be read ({exc.strerror})") from None
    if len(data) != MASTER_KEY_SIZE_BYTES:
        raise MasterKeyError(f"master key file {path} does not hold {MASTER_KEY_SIZE_BYTES} bytes")
    return data


def write_new_master_key(path: Path) -> bytes:
    """A fresh random master key written to ``path`` (0600, its directory 0700); refuses to
    overwrite an existing file (O_EXCL): losing a master key loses every key it wraps."""
    key = os.urandom(MASTER_KEY_SIZE_BYTES)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise MasterKeyError(f"master key file {path} cannot be made ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())
    return key


class FileKeyWrapper:
    """Master keys from files: ``path`` (current) and, during a rotation, ``path.next``."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        # Whether this wrapper made the file: a store that already holds keys then refuses it
        # (KeyStore.check_master_key) instead of wrapping new keys under a stranger.
        self.created = False
        if not path.exists() and create:
            write_new_master_key(path)
            self.created = True
        self._keys: dict[str, bytes] = {}
        self._current = self._add(read_master_key(path))
        self.reload_next()

    @property
    def next_path(self) -> Path:
        return self.path.with_name(self.path.name + NEXT_SUFFIX)

    def reload_next(self) -> str | None:
        """Read ``path.next`` if a rotation left one; its id, else None."""
        if self.next_path.exists():
            return self._add(read_master_key(self.next_path))
        return None

    def _add(self, key: bytes) -> str:
        ident = master_key_id(key)
        self._keys[ident] = key
        return ident

    def current_id(self) -> str:
        return self._current

    def announce_created(self) -> None:
        """The warning (log, so stderr) that a new master key file was made: it must be
        backed up apart from the database."""
        log.warning(
            "created a new master key at %s: back it up; without it keys are lost", self.path
        )

    def use(self, master_id: str) -> None:
        """Wrap with ``master_id`` from now on (a rotation switches to the next key)."""
        if master_id not in self._keys:
            raise MasterKeyError(f"master key {master_id} is not held")
        self._current = master_id

    def held_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def wrap(self, key: bytes, context: str) -> tuple[str, bytes]:
        nonce = os.urandom(WRAP_NONCE_SIZE_BYTES)
        sealed = AESGCM(self._keys[self._current]).encrypt(nonce, key, _context_aad(context))
        return self._current, nonce + sealed

    def unwrap(self, master_id: str, wrapped: bytes, context: str) -> bytes:
        master = self._keys.get(master_id)
        if master is None:
            raise MasterKeyError(
                f"the stored keys are wrapped by master key {master_id}, which {self.path} "
                "is not: set LEDGER_MASTER_KEY to the file that made them"
            )
        nonce, sealed = wrapped[:WRAP_NONCE_SIZE_BYTES], wrapped[WRAP_NONCE_SIZE_BYTES:]
        try:
            return AESGCM(master).decrypt(nonce, sealed, _context_aad(context))
        except InvalidTag:
            raise MasterKeyError(
                f"a stored key does not open under master key {master_id}"
            ) from None


def default_wrapper() -> FileKeyWrapper:
    """The wrapper the ledger uses unless given one: the file ``default_master_key_path``."""
    return FileKeyWrapper(default_master_key_path())
