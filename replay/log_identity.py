"""Which log a checkpoint file belongs to: every ledger's Merkle log has a log id, 16 random
hex digits made at its first seal and kept in its database (``ledger_merkle_log``).

Several ledgers run from one directory share the default ``LEDGER_CHECKPOINT_DIR``, signing
key and log name, so their checkpoints of one size would have one file name; each log's files
go to a directory of their own instead, ``<LEDGER_CHECKPOINT_DIR>/<log id>/<size>.checkpoint``,
and ``ledger verify`` tells another ledger's file (another log id in its directory's name)
from a fork of this one. The id is not in the signed note: the checkpoint's origin line stays
``LEDGER_LOG_NAME``, the name auditors' verifier keys carry (issue 12, item 4).
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

LOG_ID_BYTES = 8
_LOG_ID_RE = re.compile(r"[0-9a-f]{16}")


def new_log_id() -> str:
    """A fresh log id: 16 lowercase hex digits (64 random bits: two logs never share one)."""
    return secrets.token_hex(LOG_ID_BYTES)


def checkpoint_path(directory: Path, log_id: str, size: int) -> Path:
    """Where the checkpoint of ``size`` leaves of the log ``log_id`` is written."""
    return directory / log_id / f"{size}.checkpoint"


def log_id_of_file(path: Path) -> str | None:
    """The log id a checkpoint file's directory names, or None when its directory is not
    named by a log id (a file written before logs had ids, or copied elsewhere)."""
    name = path.parent.name
    return name if _LOG_ID_RE.fullmatch(name) else None
