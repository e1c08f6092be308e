"""The console's settings: where the ledger's signing key and export bags are, how long a
session lasts (``ledger serve`` takes them from the environment, ledger/settings.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.settings import DEFAULT_CHECKPOINT_DIR, DEFAULT_LOG_NAME, DEFAULT_SIGNING_KEY_PATH

DEFAULT_SESSION_S = 3600.0  # one hour from sign-in, then sign in again


@dataclass(frozen=True)
class ConsoleSettings:
    """``session_s``: a session's lifetime in seconds from sign-in (absolute, not sliding);
    ``signing_key_path`` and ``log_name``: the checkpoints' key and origin (verify, proofs);
    ``export_dir``: where the console writes export bags (a directory of the server's)."""

    session_s: float = DEFAULT_SESSION_S
    signing_key_path: Path = DEFAULT_SIGNING_KEY_PATH
    log_name: str = DEFAULT_LOG_NAME
    export_dir: Path = DEFAULT_CHECKPOINT_DIR.parent / "exports"
