"""API keys: who may call the HTTP API, and in which role (the API issue, item 5).

One stream holds every key (``ApiKeyRegistry``): creating and revoking keys are events, so
who was given access when, and who took it away, is part of the verifiable history. Keys are
few (at most ``MAX_KEYS``), so one stream stays small and a request reads it whole.

A key is stored only as the SHA-256 of its secret: a 256-bit random secret needs no slow
hash (nothing to guess), and the digest lets no one who reads the log call the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from ledger.domain import codes
from ledger.domain.context import ROLES, Ctx
from ledger.domain.errors import InvalidCommand, NotFound, RuleViolation
from ledger.domain.ids import stream_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.topics import topic

MAX_KEYS = 1000  # created over the ledger's life, revoked ones included
REGISTRY_ID = stream_id("api-keys", "registry")


@topic("api-keys/Event")
class ApiKeyEvent(Aggregate.Event):
    class_version = 1
    command_id: str


@topic("api-keys/RegistryOpened")
class RegistryOpened(ApiKeyEvent, Aggregate.Created):
    def apply(self, agg: Any) -> None:
        agg.keys = {}


@topic("api-keys/KeyCreated")
class KeyCreated(ApiKeyEvent):
    key_id: str
    name: str
    role: str
    secret_sha256: str  # hex digest of the secret; the secret itself is shown once, never kept
    actor: dict[str, str | None]  # who created it (Actor.as_dict())

    def apply(self, agg: Any) -> None:
        agg.keys[self.key_id] = {
            "key_id": self.key_id,
            "name": self.name,
            "role": self.role,
            "secret_sha256": self.secret_sha256,
            "created_at": self.timestamp,
            "revoked_at": None,
        }


@topic("api-keys/KeyRevoked")
class KeyRevoked(ApiKeyEvent):
    key_id: str
    actor: dict[str, str | None]

    def apply(self, agg: Any) -> None:
        agg.keys[self.key_id]["revoked_at"] = self.timestamp


class ApiKeyRegistry(JournaledAggregate):
    TOPIC = "mall-ledger/api-keys"
    Event = ApiKeyEvent
    Created = RegistryOpened

    if TYPE_CHECKING:
        keys: dict[str, dict[str, Any]]

    @classmethod
    def open(cls, ctx: Ctx) -> ApiKeyRegistry:
        return cls._create(
            RegistryOpened, id=REGISTRY_ID, timestamp=ctx.at, command_id=ctx.command_id
        )

    def create_key(self, ctx: Ctx, key_id: str, name: str, role: str, secret_sha256: str) -> None:
        """Record a new key. ``InvalidCommand`` for a role that is not one or a full
        registry; ``API_KEY_NAME_TAKEN`` while a live key has the same name."""
        self.check_new_key(key_id, name, role)
        self.trigger_event(
            KeyCreated,
            timestamp=ctx.at,
            command_id=ctx.command_id,
            key_id=key_id,
            name=name,
            role=role,
            secret_sha256=secret_sha256,
            actor=ctx.actor.as_dict(),
        )

    def check_new_key(self, key_id: str, name: str, role: str) -> None:
        if role not in ROLES:
            raise InvalidCommand("role", f"must be one of {', '.join(ROLES)}")
        if len(self.keys) >= MAX_KEYS:
            raise InvalidCommand("name", f"at most {MAX_KEYS} keys can ever be created")
        assert key_id not in self.keys, "key ids are random and never reused"
        if any(k["name"] == name and k["revoked_at"] is None for k in self.keys.values()):
            raise RuleViolation(
                codes.API_KEY_NAME_TAKEN, f"a live key is already named {name}; revoke it first"
            )

    def revoke(self, ctx: Ctx, key_id: str) -> bool:
        """Revoke a key: False (and nothing recorded) if it already was; ``NotFound`` for
        an id the registry never issued."""
        entry = self.keys.get(key_id)
        if entry is None:
            raise NotFound(f"no API key {key_id}")
        if entry["revoked_at"] is not None:
            return False
        self.trigger_event(
            KeyRevoked,
            timestamp=ctx.at,
            command_id=ctx.command_id,
            key_id=key_id,
            actor=ctx.actor.as_dict(),
        )
        return True

    def live(self, key_id: str) -> dict[str, Any] | None:
        """The key's entry if it was issued and not revoked."""
        entry = self.keys.get(key_id)
        return entry if entry is not None and entry["revoked_at"] is None else None

    def listed(self) -> list[dict[str, Any]]:
        """Every key ever created, oldest first, without its digest."""
        return [
            {k: v for k, v in entry.items() if k != "secret_sha256"}
            for entry in sorted(self.keys.values(), key=_created)
        ]


def _created(entry: dict[str, Any]) -> datetime:
    created: datetime = entry["created_at"]
    return created
