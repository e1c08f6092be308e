"""What every command carries into the domain: its id and the injected clock's time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Ctx:
    command_id: str
    at: datetime

    def __post_init__(self) -> None:
        assert self.at.tzinfo is not None, "command time must be timezone-aware"
        assert self.command_id, "every command carries a command_id"
