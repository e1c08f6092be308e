"""The one place that reads the environment (DESIGN.md, Settings)."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ledger.domain.errors import InvalidCommand
from ledger.domain.policy import Policy
from ledger.storage_url import DEFAULT_POOL_SIZE, StorageUrl, read_pool_size

DEFAULT_SIGNING_KEY_PATH = Path("var/signing-key.pem")


@dataclass(frozen=True)
class Settings:
    # None when LEDGER_DATABASE_URL is unset: each command then uses its default database.
    database_url: StorageUrl | None = None
    signing_key_path: Path = DEFAULT_SIGNING_KEY_PATH
    policy: Policy = field(default_factory=Policy)
    log_level: str = "INFO"
    pool_size: int = DEFAULT_POOL_SIZE


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


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    url = env.get("LEDGER_DATABASE_URL") or None
    policy_path = env.get("LEDGER_POLICY")
    return Settings(
        database_url=StorageUrl.parse(url, environ=env) if url else None,
        signing_key_path=Path(env.get("LEDGER_SIGNING_KEY") or DEFAULT_SIGNING_KEY_PATH),
        policy=load_policy(Path(policy_path) if policy_path else None),
        log_level=env.get("LEDGER_LOG_LEVEL", "INFO").upper(),
        pool_size=read_pool_size(env),
    )
