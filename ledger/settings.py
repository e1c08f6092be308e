"""The one place that reads the environment (DESIGN.md, Settings)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ledger.domain.errors import InvalidCommand
from ledger.domain.policy import Policy
from ledger.setting_values import read_whole_number
from ledger.storage_url import DEFAULT_POOL_SIZE, StorageUrl, read_pool_size

DEFAULT_SIGNING_KEY_PATH = Path("var/signing-key.pem")
# The Merkle log's checkpoints (replay/seal.py): the C2SP tlog-checkpoint origin line, which
# names the signing key too, and where checkpoint files are written to be kept elsewhere.
DEFAULT_LOG_NAME = "mall-ledger.local/log"
DEFAULT_CHECKPOINT_DIR = Path("var/checkpoints")
# Where the HTTP API keeps the bags regulators produce (replay/export_requests.py).
DEFAULT_EXPORT_DIR = Path("var/exports")
MAX_LOG_NAME_CHARS = 200
# `ledger projections run` seals the log every this many seconds (0: never; replay/periodic.py).
SEAL_INTERVAL_RANGE_S = (0, 86_400)
DEFAULT_API_MAX_BODY_BYTES = 1 << 20
API_MAX_BODY_BYTES_RANGE = (1024, 64 << 20)

# The HTTP API's group commit (ledger/group_commit.py): on/off, the most commands one
# transaction takes, how long the writer waits for more under load, how many may wait.
GROUP_COMMIT_SETTING = "LEDGER_GROUP_COMMIT"
GROUP_COMMIT_ON, GROUP_COMMIT_OFF = ("on", "true", "1", "yes"), ("off", "false", "0", "no")
DEFAULT_GROUP_COMMIT_MAX_BATCH, MAX_GROUP_COMMIT_MAX_BATCH = 64, 1000
DEFAULT_GROUP_COMMIT_WAIT_MS, MAX_GROUP_COMMIT_WAIT_MS = 2, 100
DEFAULT_GROUP_COMMIT_MAX_QUEUE, MAX_GROUP_COMMIT_MAX_QUEUE = 10_000, 1_000_000


@dataclass(frozen=True)
class GroupCommitSettings:
    """How the API's writer shares transactions (ledger/group_commit.py)."""

    enabled: bool = True
    max_batch: int = DEFAULT_GROUP_COMMIT_MAX_BATCH  # commands per transaction
    wait_ms: int = DEFAULT_GROUP_COMMIT_WAIT_MS  # the window under load, milliseconds
    max_queue: int = DEFAULT_GROUP_COMMIT_MAX_QUEUE  # commands accepted and not yet saved


@dataclass(frozen=True)
class Settings:
    # None when LEDGER_DATABASE_URL is unset: each command then uses its default database.
    database_url: StorageUrl | None = None
    signing_key_path: Path = DEFAULT_SIGNING_KEY_PATH
    log_name: str = DEFAULT_LOG_NAME
    checkpoint_dir: Path = DEFAULT_CHECKPOINT_DIR
    export_dir: Path = DEFAULT_EXPORT_DIR
    seal_interval_s: int = 0
    policy: Policy = field(default_factory=Policy)
    log_level: str = "INFO"
    pool_size: int = DEFAULT_POOL_SIZE
    api_max_body_bytes: int = DEFAULT_API_MAX_BODY_BYTES
    group_commit: GroupCommitSettings = field(default_factory=GroupCommitSettings)


def load_policy(path: Path | None) -> Policy:
    """Policy defaults (DOMAIN.md section 9) overridden by a TOML file's [policy] table."""
    if path is None:
        return Policy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidCommand("LEDGER_POLICY", f"cannot read policy file: {exc}") from None
    table = data.get("policy", data)
    defaults = Policy()
    known = {f.name for f in fields(Policy)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise InvalidCommand("LEDGER_POLICY", f"unknown policy keys: {', '.join(unknown)}")
    for key, value in table.items():
        expected = type(getattr(defaults, key))
        if type(value) is not expected or (expected is int and value <= 0):
            rule = "must be true or false" if expected is bool else "must be a positive integer"
            raise InvalidCommand(f"LEDGER_POLICY.{key}", rule)
    policy = replace(Policy(), **table)
    if policy.return_window_holiday_extension:
        # DOMAIN.md section 9 keeps this off; turning it on needs a holiday calendar we lack.
        raise InvalidCommand(
            "LEDGER_POLICY",
            "return_window_holiday_extension: no holiday calendar is configured; only false works",
        )
    return policy


def read_group_commit(env: Mapping[str, str]) -> GroupCommitSettings:
    """``LEDGER_GROUP_COMMIT`` (on/off), ``LEDGER_GROUP_COMMIT_MAX_BATCH``,
    ``LEDGER_GROUP_COMMIT_WAIT_MS`` and ``LEDGER_GROUP_COMMIT_MAX_QUEUE``; a bad value is
    ``InvalidCommand`` naming the setting and the rule, never echoing the value."""
    switch = env.get(GROUP_COMMIT_SETTING, "").strip().lower()
    if switch and switch not in GROUP_COMMIT_ON + GROUP_COMMIT_OFF:
        raise InvalidCommand(GROUP_COMMIT_SETTING, "must be on or off")
    prefix = f"{GROUP_COMMIT_SETTING}_"
    return GroupCommitSettings(
        enabled=switch not in GROUP_COMMIT_OFF,
        max_batch=read_whole_number(
            env, f"{prefix}MAX_BATCH", DEFAULT_GROUP_COMMIT_MAX_BATCH, 1, MAX_GROUP_COMMIT_MAX_BATCH
        ),
        wait_ms=read_whole_number(
            env, f"{prefix}WAIT_MS", DEFAULT_GROUP_COMMIT_WAIT_MS, 0, MAX_GROUP_COMMIT_WAIT_MS
        ),
        max_queue=read_whole_number(
            env, f"{prefix}MAX_QUEUE", DEFAULT_GROUP_COMMIT_MAX_QUEUE, 1, MAX_GROUP_COMMIT_MAX_QUEUE
        ),
    )


def read_log_name(env: Mapping[str, str]) -> str:
    """``LEDGER_LOG_NAME``: the checkpoints' origin line and key name (C2SP tlog-checkpoint,
    signed-note): non-empty, at most 200 characters, printable, no space and no '+'."""
    name = env.get("LEDGER_LOG_NAME") or DEFAULT_LOG_NAME
    if (
        len(name) > MAX_LOG_NAME_CHARS
        or not name.isprintable()
        or any(ch.isspace() or ch == "+" for ch in name)
    ):
        raise InvalidCommand(
            "LEDGER_LOG_NAME",
            f"a log name is 1 to {MAX_LOG_NAME_CHARS} printable characters without spaces or '+'",
        )
    return name


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    url = env.get("LEDGER_DATABASE_URL") or None
    policy_path = env.get("LEDGER_POLICY")
    return Settings(
        database_url=StorageUrl.parse(url, environ=env) if url else None,
        signing_key_path=Path(env.get("LEDGER_SIGNING_KEY") or DEFAULT_SIGNING_KEY_PATH),
        log_name=read_log_name(env),
        checkpoint_dir=Path(env.get("LEDGER_CHECKPOINT_DIR") or DEFAULT_CHECKPOINT_DIR),
        export_dir=Path(env.get("LEDGER_EXPORT_DIR") or DEFAULT_EXPORT_DIR),
        seal_interval_s=read_whole_number(env, "LEDGER_SEAL_INTERVAL_S", 0, *SEAL_INTERVAL_RANGE_S),
        policy=load_policy(Path(policy_path) if policy_path else None),
        log_level=(env.get("LEDGER_LOG_LEVEL") or "INFO").upper(),  # empty: unset, as the URL
        pool_size=read_pool_size(env),
        api_max_body_bytes=read_whole_number(
            env, "LEDGER_API_MAX_BODY_BYTES", DEFAULT_API_MAX_BODY_BYTES, *API_MAX_BODY_BYTES_RANGE
        ),
        group_commit=read_group_commit(env),
    )
