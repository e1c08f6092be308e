"""What every command carries into the domain: its id, the injected clock's time, and who
sent it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# Roles of API keys (api/auth.py), and ``local``: a process with the database's own
# credentials (the CLI, an import, the demo), which answers to whoever runs it.
ROLES = ("service", "auditor", "regulator", "admin")
LOCAL_ROLE = "local"
# What command records written before actors were recorded read as (CommandRecorded v1).
UNRECORDED_ROLE = "unrecorded"


@dataclass(frozen=True)
class Actor:
    """Who caused a command: the API key's id and role, or no key and ``local``.

    Recorded on the command's record (``command/Recorded``, ``command/Refused``); every
    event a command writes carries its ``command_id``, so each event's actor is that of its
    command's record."""

    key_id: str | None
    role: str

    def as_dict(self) -> dict[str, str | None]:
        return {"key_id": self.key_id, "role": self.role}


LOCAL_ACTOR = Actor(None, LOCAL_ROLE)


@dataclass(frozen=True)
class Ctx:
    command_id: str
    at: datetime
    actor: Actor = field(default=LOCAL_ACTOR)

    def __post_init__(self) -> None:
        assert self.at.tzinfo is not None, "command time must be timezone-aware"
        assert self.command_id, "every command carries a command_id"
