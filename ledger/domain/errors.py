"""One error root for the ledger; every refusal names a stable code and the clause behind it.

The codes are defined once, in ``ledger.domain.codes`` (the catalogue): an error class names
its entry, a ``RuleViolation`` is given one, so a mistyped code fails the type check.
"""

from __future__ import annotations

from typing import ClassVar

from ledger.domain import codes
from ledger.domain.codes import ErrorCode


class LedgerError(Exception):
    """Root of every error the ledger raises on purpose.

    ``code`` and ``clause`` are the catalogue entry's (``entry``); a subclass names its entry in
    ``catalogued``."""

    # True once the refusal was saved as its command's outcome (an import's command record).
    recorded: bool = False
    # True for a refusal that is its command's outcome, saved now or by an earlier send: every
    # send of the command gets it, so whoever reports it says the same each time.
    remembered: bool = False

    catalogued: ClassVar[ErrorCode] = codes.LEDGER_ERROR

    def __init__(
        self, message: str, *, entry: ErrorCode | None = None, clause: str | None = None
    ) -> None:
        super().__init__(message)
        self.entry = entry or self.catalogued
        self.code = self.entry.code
        self.clause = self.entry.clause if clause is None else clause
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "clause": self.clause, "message": self.message}


class RuleViolation(LedgerError):
    """A command refused by a rule of the agreement or the law behind it.

    The clause cited is the catalogue entry's; an entry marked ``per_raise`` (cited under the
    command's or the closure's clause) is given its ``clause`` by the raise site. The message
    never carries personal data: it names orders, codes and amounts only.
    """

    def __init__(self, code: ErrorCode, message: str, *, clause: str | None = None) -> None:
        super().__init__(message, entry=code, clause=clause)

    def __repr__(self) -> str:
        return f"RuleViolation({self.code!r}, {self.clause!r}, {self.message!r})"


class InvalidCommand(LedgerError):
    """Input that cannot be a command at all: names the field and the rule it breaks."""

    catalogued = codes.INVALID_COMMAND

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule

    def as_dict(self) -> dict[str, str]:
        return {**super().as_dict(), "field": self.field}


class NotFound(LedgerError):
    catalogued = codes.NOT_FOUND


class Conflict(LedgerError):
    """Another writer changed the same stream first (optimistic concurrency lost)."""

    catalogued = codes.CONFLICT


class StorageUnavailable(LedgerError):
    """The database could not be reached or failed; nothing of the command was written."""

    catalogued = codes.STORAGE_UNAVAILABLE


class CommandIdReused(LedgerError):
    """The same command_id was sent again with a different payload."""

    catalogued = codes.COMMAND_ID_REUSED


class CommandFailed(LedgerError):
    """A command failed in a way no rule foresaw (a bug, an unexpected value): nothing of it
    was written, and the commands around it (in a batch) are not affected. The message names
    the command and the exception's type, never its text (it may quote the input)."""

    catalogued = codes.COMMAND_FAILED


class CommandInProgress(LedgerError):
    """A command id whose first request is still being decided or saved in this process
    (IETF Idempotency-Key draft: a concurrent retry is refused, not run twice)."""

    catalogued = codes.COMMAND_IN_PROGRESS


class PreconditionFailed(LedgerError):
    """``If-Match`` named a stream version that is no longer the stream's (RFC 9110 section
    13.1.1): another command changed it since the client read it; nothing was written."""

    catalogued = codes.PRECONDITION_FAILED
