"""The one place that reads the environment (DESIGN.md, Settings)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ledger.domain.errors import InvalidCommand
from ledger.domain.policy import Policy
from ledger.storage_url import DEFAULT_POOL_SIZE, StorageUrl, read_pool_size

DEFAULT_SIGNING_KEY_PATH = Path("var/signing-key.pem")
DEFAULT_API_MAX_BODY_BYTES = 1 << 20
API_MAX_BODY_BYTES_RANGE = (1024, 64 << 20)


@dataclass(frozen=True)
class Settings:
    # None when LEDGER_DATABASE_URL is unset: each command then uses its default database.
    database_url: StorageUrl | None = None
    signing_key_path: Path = DEFAULT_SIGNING_KEY_PATH
    policy: Policy = field(default_factory=Policy)
    log_level: str = "INFO"
    pool_size: int = DEFAULT_POOL_SIZE
    api_max_body_bytes: int = DEFAULT_API_MAX_BODY_BYTES


def bounded_int(env: Mapping[str, str], name: str, default: int, span: tuple[int, int]) -> int:
    """An integer setting from ``low`` to ``high``; InvalidCommand naming the variable."""
    text = env.get(name)
    if text is None or text == "":
        return default
    low, high = span
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise InvalidCommand(name, f"must be a whole number from {low} to {high}")
    return int(text)


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


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    url = env.get("LEDGER_DATABASE_URL") or None
    policy_path = env.get("LEDGER_POLICY")
    return Settings(
        database_url=StorageUrl.parse(url, environ=env) if url else None,
        signing_key_path=Path(env.get("LEDGER_SIGNING_KEY") or DEFAULT_SIGNING_KEY_PATH),
        policy=load_policy(Path(policy_path) if policy_path else None),
        log_level=env.get("LEDGER_LOG_LEVEL", "INFO").upper(),
        pool_size=read_pool_size(env),
        api_max_body_bytes=bounded_int(
            env, "LEDGER_API_MAX_BODY_BYTES", DEFAULT_API_MAX_BODY_BYTES, API_MAX_BODY_BYTES_RANGE
        ),
    )
