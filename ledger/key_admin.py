"""Operator's work on the key store: master key rotation and retirement, linkage expiry
(issue 11, item 6). Service layer, like ledger/api_keys.py: the CLI (cli/keys.py) calls these.

One master key file may serve several databases (the default path serves every ledger a user
runs), so it is a keyring (ledger/key_wrapping.py) and nothing here makes a wrapped key
unrecoverable except ``retire_master`` after its check:

- ``rotate_master``: if the database holds keys under an older version than the keyring's
  current one (a killed run, or another database's rotation added the current version), they
  are re-wrapped under the current one; otherwise a new version is added first (kept with the
  old ones). Keys are re-wrapped in batches, each row switched by compare-and-set on its
  master key id, so a run killed at any point leaves every key readable and is finished by
  running it again. Other databases sharing the file keep opening under the old version.
- ``retire_master``: removes one old version from the keyring, only when every database the
  keyring knows of (and any named) opens and holds no key wrapped by it, and only confirmed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.key_wrapping import (
    MASTER_KEY_SIZE_BYTES,
    FileKeyWrapper,
    Keyring,
    KeyWrapper,
    MasterKeyError,
)
from ledger.keystore import KeyStore, open_keystore
from ledger.storage_url import StorageUrl


@dataclass(frozen=True)
class Rotation:
    """What ``rotate_master`` did: keys re-wrapped now, the master key id they are under,
    whether this run finished one begun before (here or by another database's rotation), and
    the older versions the keyring still holds (until ``retire_master``)."""

    rewrapped: int
    master_key_id: str
    resumed: bool
    older_ids: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "rewrapped": self.rewrapped,
            "master_key_id": self.master_key_id,
            "resumed": self.resumed,
            "older_master_key_ids": list(self.older_ids),
        }


def file_wrapper(keystore: KeyStore) -> FileKeyWrapper:
    """The store's keyring; MasterKeyError if its keys are wrapped by a key service."""
    wrapper = keystore.wrapper
    if not isinstance(wrapper, FileKeyWrapper):
        raise MasterKeyError("the keys are wrapped by a key service: rotate the master key there")
    return wrapper


def rotate_master(keystore: KeyStore, progress: Callable[[int], None] | None = None) -> Rotation:
    """Re-wrap every key of ``keystore`` under the keyring's current version, adding a new
    version first unless keys under an older one are left (see the module docstring).
    Raises MasterKeyError if the keys are wrapped by a key service or the file cannot be read
    or written."""
    wrapper = file_wrapper(keystore)
    current = wrapper.current_id()
    resumed = keystore.count_live() > keystore.count_wrapped_by(current)
    fresh = os.urandom(MASTER_KEY_SIZE_BYTES)
    # Resuming changes nothing but writes a first-format file (or its .next) as a keyring.
    current = wrapper.change(lambda ring: ring if resumed else ring.with_key(fresh)).current
    rewrapped = keystore.rewrap_all(progress)
    older = tuple(k for k in wrapper.keyring.keys if k != current)
    return Rotation(rewrapped, current, resumed, older)


@dataclass(frozen=True)
class RetireCheck:
    """What retiring ``master_key_id`` would lose: per database (URL without password) the
    keys it still wraps there, the databases that could not be checked and why, and whether
    the version was removed."""

    master_key_id: str
    in_use: dict[str, int] = field(default_factory=dict)
    unchecked: dict[str, str] = field(default_factory=dict)
    retired: bool = False

    @property
    def safe(self) -> bool:
        return not self.unchecked and not any(self.in_use.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "master_key_id": self.master_key_id,
            "keys_wrapped": self.in_use,
            "unchecked": self.unchecked,
            "retired": self.retired,
        }


def retire_master(
    wrapper: FileKeyWrapper,
    master_id: str,
    databases: Sequence[StorageUrl | str] = (),
    forget: Sequence[StorageUrl | str] = (),
    *,
    confirmed: bool,
) -> RetireCheck:
    """Check every database the keyring knows of and ``databases`` (URLs) for keys wrapped by
    ``master_id``; drop ``forget`` (URLs of databases deleted for good) from the keyring's
    list unchecked; remove the version only if ``confirmed`` and the check found no key and
    no database it could not open. Raises InvalidCommand for the current or an unknown id."""
    if master_id not in wrapper.keyring.keys:
        raise InvalidCommand("MASTER_KEY_ID", f"is not a version the keyring {wrapper.path} holds")
    if master_id == wrapper.current_id():
        raise InvalidCommand("MASTER_KEY_ID", "is the current version: rotate-master first")
    gone = {StorageUrl.of(url).without_password for url in forget}
    if gone:
        wrapper.change(lambda ring: _without_databases(ring, gone))
    named = [StorageUrl.of(url) for url in databases]
    for url in named:
        wrapper.register(url.without_password)
    check = RetireCheck(master_id)
    for text in wrapper.keyring.databases:
        url = next((u for u in named if u.without_password == text), None) or StorageUrl.of(text)
        _count_in(wrapper, url, master_id, check)
    if confirmed and check.safe:
        wrapper.change(lambda ring: ring.without(master_id))
        return RetireCheck(master_id, check.in_use, check.unchecked, retired=True)
    return check


def _without_databases(ring: Keyring, gone: set[str]) -> Keyring:
    for url in gone:
        ring = ring.without_database(url)
    return ring


def _count_in(wrapper: KeyWrapper, url: StorageUrl, master_id: str, check: RetireCheck) -> None:
    """Record in ``check`` how many keys ``master_id`` wraps in ``url``, or why it could not
    be opened (a SQLite file that is gone is not made again)."""
    if url.sqlite_path is not None and not url.sqlite_path.exists():
        check.unchecked[url.without_password] = "the file does not exist"
        return
    try:
        with open_keystore(url, wrapper) as store:
            check.in_use[url.without_password] = store.count_wrapped_by(master_id)
    except LedgerError as exc:
        check.unchecked[url.without_password] = exc.message


# A year's linkage key lives through the next year (orders of that year carry its digests as
# "the previous year's") and is destroyed on 1 January of the year after (issue 11, item 5).
LINKAGE_KEY_YEARS = 2


def expire_linkage(keystore: KeyStore, now: datetime) -> list[int]:
    """Destroy the linkage key of every calendar year Y with 1 January Y+2 at or before
    ``now`` (UTC); the years destroyed by this call (idempotent: again, none). The retention
    run calls it with its clock."""
    if now.tzinfo is None:
        raise InvalidCommand("now", "must be timezone-aware")
    current = now.astimezone(UTC).year
    return keystore.expire_linkage_keys(current - LINKAGE_KEY_YEARS + 1, now)
