"""Operator's work on the key store: re-wrapping under a new master key, compaction (issue 11,
item 6). Service layer, like ledger/api_keys.py: the CLI (cli/keys.py) calls these.

``rotate_master``: a new master key file is written beside the current one (``master.key.next``,
0600) unless a killed run left one; every key is re-wrapped under it in batches (each row
records its master key id, so a batch done is never redone); when no row is left under the
old master key, the next file replaces the current one (one atomic rename), which removes the
old master key. Until then every ledger process reads both files, so a run killed at any point
leaves every key readable and is finished by running it again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.domain.errors import InvalidCommand
from ledger.key_wrapping import FileKeyWrapper, MasterKeyError, write_new_master_key
from ledger.keystore import KeyStore


@dataclass(frozen=True)
class Rotation:
    """What ``rotate_master`` did: keys re-wrapped now, the master key id they are under,
    and whether this run resumed an interrupted one."""

    rewrapped: int
    master_key_id: str
    resumed: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "rewrapped": self.rewrapped,
            "master_key_id": self.master_key_id,
            "resumed": self.resumed,
        }


def rotate_master(keystore: KeyStore, progress: Callable[[int], None] | None = None) -> Rotation:
    """Re-wrap every key of ``keystore`` under a new master key and make it the current file.
    Raises MasterKeyError if the store's keys are not wrapped by a master key file (a KMS
    rotates on its own side) or a file cannot be read or written."""
    wrapper = keystore.wrapper
    if not isinstance(wrapper, FileKeyWrapper):
        raise MasterKeyError("the keys are wrapped by a key service: rotate the master key there")
    next_id = wrapper.reload_next()
    resumed = next_id is not None
    if next_id is None:
        write_new_master_key(wrapper.next_path)
        next_id = wrapper.reload_next()
        assert next_id is not None
    wrapper.use(next_id)
    rewrapped = keystore.rewrap_all(progress)
    _replace(wrapper)
    return Rotation(rewrapped, next_id, resumed)


def _replace(wrapper: FileKeyWrapper) -> None:
    """The next file becomes the current one (the old master key goes with the rename), and
    the rename is made durable before this returns."""
    os.replace(wrapper.next_path, wrapper.path)
    directory = os.open(wrapper.path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


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
