"""The one place that reads the environment (DESIGN.md, Settings)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ledger.domain.errors import InvalidCommand
from ledger.domain.policy import Policy

DEFAULT_SQLITE_PATH = Path("var/ledger.db")
DEFAULT_SIGNING_KEY_PATH = Path("var/signing-key.pem")
# PostgreSQL connections per process, all stores together (ledger/pg_pool.py). At least two:
# one may hold the set-up lock while another creates the tables.
DEFAULT_POOL_SIZE = 4
MIN_POOL_SIZE, MAX_POOL_SIZE = 2, 100


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
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


def read_pool_size(environ: Mapping[str, str] | None = None) -> int:
    """``LEDGER_POOL_SIZE``: a whole number from MIN_POOL_SIZE to MAX_POOL_SIZE."""
    text = (os.environ if environ is None else environ).get("LEDGER_POOL_SIZE", "").strip()
    if not text:
        return DEFAULT_POOL_SIZE
    if not (text.isascii() and text.isdigit()) or not MIN_POOL_SIZE <= int(text) <= MAX_POOL_SIZE:
        raise InvalidCommand(
            "LEDGER_POOL_SIZE", f"must be a whole number from {MIN_POOL_SIZE} to {MAX_POOL_SIZE}"
        )
    return int(text)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    url = env.get("LEDGER_DATABASE_URL") or None
    if url and not url.startswith(("postgresql://", "postgres://", "sqlite:///")):
        raise InvalidCommand(
            "LEDGER_DATABASE_URL", "must start with postgresql:// or sqlite:/// (or be unset)"
        )
    policy_path = env.get("LEDGER_POLICY")
    return Settings(
        database_url=url,
        signing_key_path=Path(env.get("LEDGER_SIGNING_KEY") or DEFAULT_SIGNING_KEY_PATH),
        policy=load_policy(Path(policy_path) if policy_path else None),
        log_level=env.get("LEDGER_LOG_LEVEL", "INFO").upper(),
        pool_size=read_pool_size(env),
    )
