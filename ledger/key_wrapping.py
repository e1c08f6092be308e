"""Wrapping data keys under a key-encryption key held outside the database (issue 11, item 6).

Every key the key store holds (subjects' keys, linkage keys) is stored wrapped: AES-256-GCM under
a master key, with associated data naming the row it belongs to, so a wrapped key copied to
another row does not open. The database alone therefore reveals no key; whoever also holds the
master key file does (the brute-force test assumes an attacker with both).

``KeyWrapper`` is the interface a KMS could implement (wrap, unwrap, which master key is
current). ``FileKeyWrapper`` reads the master key file named by ``LEDGER_MASTER_KEY`` (default
``$XDG_DATA_HOME/mall-ledger/master.key``, XDG Base Directory spec), created 0600 on first use
with a warning. One file may serve several databases (the default does), so it is a **keyring**:
every master key version it ever held until an explicit retire, which one is current, and the
databases that have used it. ``ledger keys rotate-master`` adds a version and re-wraps one
database; the other databases still open under the older versions and are re-wrapped by their
own run; ``ledger keys retire-master`` removes a version only after checking that no known
database still uses it (ledger/key_admin.py). A first-format file (32 raw bytes) is read as a
keyring of one version and rewritten in the keyring format at the first change; a
``master.key.next`` an interrupted first-format rotation left is folded in as the current
version. Every change is written whole and renamed into place under a lock, so a kill at any
point leaves the old or the new keyring, never a part of one.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.domain import codes
from ledger.domain.errors import LedgerError

MASTER_KEY_SETTING = "LEDGER_MASTER_KEY"
MASTER_KEY_SIZE_BYTES = 32
WRAP_NONCE_SIZE_BYTES = 12
NEXT_SUFFIX = ".next"  # a first-format rotation's next key (read, folded into the keyring)
LOCK_SUFFIX = ".lock"
KEYRING_HEADER = "mall-ledger master keyring v1"
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


def read_key_file(path: Path) -> bytes:
    """The bytes of ``path``; MasterKeyError naming the file if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MasterKeyError(f"master key file {path} cannot be read ({exc.strerror})") from None


@dataclass(frozen=True)
class Keyring:
    """A master key file's content: ``keys`` (id -> 32 bytes, oldest first), the ``current``
    id new wraps use, and the ``databases`` (URLs without password) that have used it."""

    keys: dict[str, bytes]
    current: str
    databases: tuple[str, ...] = field(default=())

    @classmethod
    def of_one(cls, key: bytes) -> Keyring:
        return cls({master_key_id(key): key}, master_key_id(key))

    @property
    def current_key(self) -> bytes:
        return self.keys[self.current]

    def with_key(self, key: bytes) -> Keyring:
        """This keyring with ``key`` added as the current version."""
        return replace(
            self, keys={**self.keys, master_key_id(key): key}, current=master_key_id(key)
        )

    def without(self, master_id: str) -> Keyring:
        return replace(self, keys={k: v for k, v in self.keys.items() if k != master_id})

    def with_database(self, url: str) -> Keyring:
        return self if url in self.databases else replace(self, databases=(*self.databases, url))

    def without_database(self, url: str) -> Keyring:
        return replace(self, databases=tuple(d for d in self.databases if d != url))

    def text(self) -> str:
        lines = [KEYRING_HEADER]
        lines += [f"key {ident} {base64.b64encode(k).decode()}" for ident, k in self.keys.items()]
        lines.append(f"current {self.current}")
        lines += [f"database {url}" for url in self.databases]
        return "\n".join(lines) + "\n"


def parse_keyring(path: Path, data: bytes) -> Keyring:
    """The keyring in ``data`` (the keyring text, or a first-format file of 32 raw bytes);
    MasterKeyError naming ``path`` if it is neither."""
    if len(data) == MASTER_KEY_SIZE_BYTES:
        return Keyring.of_one(data)
    bad = MasterKeyError(
        f"master key file {path} holds neither a keyring nor a key of {MASTER_KEY_SIZE_BYTES} bytes"
    )
    try:
        header, *lines = data.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise bad from None
    if header != KEYRING_HEADER:
        raise bad
    keys: dict[str, bytes] = {}
    current, databases = "", []
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind == "key":
            key = _key_bytes(rest.partition(" ")[2], bad)
            keys[master_key_id(key)] = key
        elif kind == "current":
            current = rest
        elif kind == "database":
            databases.append(rest)
    if current not in keys:
        raise bad
    return Keyring(keys, current, tuple(databases))


def _key_bytes(text: str, bad: MasterKeyError) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise bad from None
    if len(key) != MASTER_KEY_SIZE_BYTES:
        raise bad
    return key


def read_keyring(path: Path) -> Keyring:
    """The keyring in ``path``, with a first-format rotation's ``path.next`` (if any) as its
    current version; MasterKeyError naming the file if it cannot be read or parsed."""
    keyring = parse_keyring(path, read_key_file(path))
    following = path.with_name(path.name + NEXT_SUFFIX)
    if following.exists():
        keyring = keyring.with_key(parse_keyring(following, read_key_file(following)).current_key)
    return keyring


def _write_whole(path: Path, text: str) -> None:
    """``text`` into ``path`` (0600): written to a draft, fsynced, renamed over, the
    directory fsynced, so a kill leaves the old or the new file."""
    draft = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(draft, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        draft.unlink(missing_ok=True)
        raise MasterKeyError(f"master key file {path} cannot be written ({exc.strerror})") from None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path.lock`` (released when the process dies): one writer of the
    keyring at a time, across processes."""
    lock_path = path.with_name(path.name + LOCK_SUFFIX)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise MasterKeyError(f"master key file {path} cannot be locked ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update_keyring(path: Path, change: Callable[[Keyring], Keyring]) -> Keyring:
    """Apply ``change`` to the keyring in ``path`` under the lock and write the result whole
    (first-format files become keyrings here; a folded-in ``.next`` file is then removed)."""
    with _locked(path):
        after = change(read_keyring(path))
        if read_key_file(path).decode("ascii", "replace") != after.text():
            _write_whole(path, after.text())
        path.with_name(path.name + NEXT_SUFFIX).unlink(missing_ok=True)
    return after


def write_new_master_key(path: Path) -> bytes:
    """A keyring of one fresh random master key written to ``path`` (0600, its directory
    0700); refuses to overwrite an existing file (O_EXCL): losing a master key loses every
    key it wraps. The key."""
    key = os.urandom(MASTER_KEY_SIZE_BYTES)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise MasterKeyError(f"master key file {path} cannot be made ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(Keyring.of_one(key).text())
        out.flush()
        os.fsync(out.fileno())
    return key


class FileKeyWrapper:
    """Master keys from a keyring file. It is read again when it changed on disk (another
    process rotated or retired a version), so a running server keeps opening keys re-wrapped
    under a version added after it started, and wraps new keys under the current one."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        # Whether this wrapper made the file: a store that already holds keys then refuses it
        # (KeyStore.check_master_key) instead of wrapping new keys under a stranger.
        self.created = False
        if not path.exists() and create:
            write_new_master_key(path)
            self.created = True
        self._seen: tuple[int, int, int] | None = None
        self.keyring = read_keyring(path)
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            found = os.stat(self.path)
        except OSError:
            return None
        return (found.st_ino, found.st_mtime_ns, found.st_size)

    def refresh(self) -> None:
        """Read the keyring again if the file changed since it was last read."""
        stamp = self._stamp()
        if stamp is not None and stamp != self._seen:
            self.keyring, self._seen = read_keyring(self.path), stamp

    def change(self, change: Callable[[Keyring], Keyring]) -> Keyring:
        """Apply ``change`` to the file (ledger/key_admin.py's rotation and retire) and hold
        the result."""
        self.keyring = update_keyring(self.path, change)
        self._seen = self._stamp()
        return self.keyring

    def register(self, database: str) -> None:
        """Record ``database`` (a URL without password) as a user of this keyring, once."""
        if database not in self.keyring.databases:
            self.change(lambda ring: ring.with_database(database))

    def current_id(self) -> str:
        self.refresh()
        return self.keyring.current

    def announce_created(self) -> None:
        """The warning (log, so stderr) that a new master key file was made: it must be
        backed up apart from the database."""
        log.warning(
            "created a new master key at %s: back it up; without it keys are lost", self.path
        )

    def held_ids(self) -> frozenset[str]:
        return frozenset(self.keyring.keys)

    def wrap(self, key: bytes, context: str) -> tuple[str, bytes]:
        self.refresh()
        nonce = os.urandom(WRAP_NONCE_SIZE_BYTES)
        current = self.keyring.current
        sealed = AESGCM(self.keyring.keys[current]).encrypt(nonce, key, _context_aad(context))
        return current, nonce + sealed

    def unwrap(self, master_id: str, wrapped: bytes, context: str) -> bytes:
        if master_id not in self.keyring.keys:
            self.refresh()
        master = self.keyring.keys.get(master_id)
        if master is None:
            held = ", ".join(self.keyring.keys)
            raise MasterKeyError(
                f"the stored keys are wrapped by master key {master_id}, which the keyring "
                f"{self.path} does not hold (it holds {held}): the version was retired, or "
                "LEDGER_MASTER_KEY names another file than the one that made them"
            )
        nonce, sealed = wrapped[:WRAP_NONCE_SIZE_BYTES], wrapped[WRAP_NONCE_SIZE_BYTES:]
        try:
            return AESGCM(master).decrypt(nonce, sealed, _context_aad(context))
        except InvalidTag:
            raise MasterKeyError(
                f"a stored key does not open under master key {master_id}"
            ) from None


class NoMasterKey:
    """The wrapper of a ledger opened for work that reads no personal data (``ledger seal``,
    API keys, the key table's compaction): the master key file is not read at all, and a
    key asked for anyway is MasterKeyError saying so, never a key made under a stranger."""

    def _refuse(self) -> MasterKeyError:
        return MasterKeyError("this command opened the ledger without the master key")

    def current_id(self) -> str:
        raise self._refuse()

    def wrap(self, key: bytes, context: str) -> tuple[str, bytes]:
        raise self._refuse()

    def unwrap(self, master_id: str, wrapped: bytes, context: str) -> bytes:
        raise self._refuse()


def default_wrapper() -> FileKeyWrapper:
    """The wrapper the ledger uses unless given one: the file ``default_master_key_path``."""
    return FileKeyWrapper(default_master_key_path())
