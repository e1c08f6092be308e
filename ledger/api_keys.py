"""Creating, listing, revoking and checking API keys (service layer over ``ApiKeyRegistry``).

A key reads ``mlk_<key id>_<secret>``: the id (12 hex digits) names the entry, the secret
(43 URL-safe characters, 256 random bits) proves possession and is stored only as its
SHA-256. The key is shown once, when it is created; it cannot be recovered, only revoked and
replaced. Names are labels for operators (a service, a team), never a person's data: they
follow the same rule as command ids.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from ledger.application import Ledger
from ledger.domain.api_keys import REGISTRY_ID, ApiKeyRegistry
from ledger.domain.context import LOCAL_ACTOR, Actor, Ctx
from ledger.domain.errors import Conflict, InvalidCommand
from ledger.driver_errors import storage_errors

TOKEN_PREFIX = "mlk_"
_TOKEN = re.compile(r"^mlk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9._:/@+-]{1,64}$")
T = TypeVar("T")
MAX_TRIES = 3  # two admins creating keys at once: the loser reads again and retries


@dataclass(frozen=True)
class IssuedKey:
    """A key just created: ``key`` is the secret token, shown to the user once."""

    key: str
    key_id: str
    role: str
    name: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "id": self.key_id, "role": self.role, "name": self.name}


def digest(secret: str) -> str:
    return sha256(secret.encode("ascii")).hexdigest()


def check_key_id(key_id: str) -> None:
    """InvalidCommand unless ``key_id`` has a key id's shape (12 lowercase hex digits)."""
    if not re.fullmatch(r"[0-9a-f]{12}", key_id):
        raise InvalidCommand("id", "must be a key id: 12 lowercase hex digits")


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):  # ``match`` with ``$`` would let a trailing newline in
        raise InvalidCommand("name", "1-64 characters of A-Z a-z 0-9 . _ : / @ + -")


def create_key(ledger: Ledger, role: str, name: str, actor: Actor = LOCAL_ACTOR) -> IssuedKey:
    """Create a key for ``role`` (service, auditor, regulator, admin). Raises InvalidCommand
    (role, name), RuleViolation ``API_KEY_NAME_TAKEN``, StorageUnavailable."""
    check_name(name)
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    _change(
        ledger,
        f"api-key-create-{key_id}",
        actor,
        lambda r, ctx: r.create_key(ctx, key_id, name, role, digest(secret)),
    )
    return IssuedKey(f"{TOKEN_PREFIX}{key_id}_{secret}", key_id, role, name)


def revoke_key(ledger: Ledger, key_id: str, actor: Actor = LOCAL_ACTOR) -> bool:
    """Revoke a key by id: True if revoked now, False if it already was. NotFound for an id
    never issued; InvalidCommand for text that cannot be an id."""
    check_key_id(key_id)
    return _change(
        ledger,
        f"api-key-revoke-{key_id}-{secrets.token_hex(4)}",
        actor,
        lambda r, ctx: r.revoke(ctx, key_id),
    )


def list_keys(ledger: Ledger) -> list[dict[str, Any]]:
    """Every key ever created, oldest first: id, name, role, created_at, revoked_at."""
    registry = _registry(ledger)
    return [] if registry is None else registry.listed()


def authenticate(registry: ApiKeyRegistry | None, token: str) -> Actor | None:
    """The actor a bearer token stands for, or None (malformed, unknown, revoked). The
    secret is compared in constant time."""
    found = _TOKEN.match(token)
    if found is None or registry is None:
        return None
    entry = registry.live(found.group(1))
    if entry is None or not hmac.compare_digest(entry["secret_sha256"], digest(found.group(2))):
        return None
    return Actor(entry["key_id"], entry["role"])


def live_actor(registry: ApiKeyRegistry | None, key_id: str) -> Actor | None:
    """The actor of the key ``key_id`` if it is issued and not revoked, else None: what a
    console session (which holds the key's id, never its secret) stands for now."""
    entry = None if registry is None else registry.live(key_id)
    return None if entry is None else Actor(entry["key_id"], entry["role"])


def load_registry(ledger: Ledger) -> ApiKeyRegistry | None:
    """The registry as stored now (None before the first key); StorageUnavailable."""
    return _registry(ledger)


def _registry(ledger: Ledger) -> ApiKeyRegistry | None:
    with storage_errors():
        try:
            registry: ApiKeyRegistry = ledger.app.repository.get(REGISTRY_ID)
        except AggregateNotFoundError:
            return None
        return registry


def _change(
    ledger: Ledger, command_id: str, actor: Actor, change: Callable[[ApiKeyRegistry, Ctx], T]
) -> T:
    """Apply ``change`` to the registry as stored now and save it; read again and retry if
    another writer saved first. Returns what ``change`` returned."""
    for _ in range(MAX_TRIES):
        ctx = Ctx(command_id, ledger.moment(None), actor)
        registry = _registry(ledger) or ApiKeyRegistry.open(ctx)
        outcome = change(registry, ctx)
        with storage_errors():
            try:
                ledger.app.save(registry)
                return outcome
            except IntegrityError:
                continue
    raise Conflict("the API key registry kept changing under other writers; retry")
