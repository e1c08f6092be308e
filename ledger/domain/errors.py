"""One error root for the ledger; every refusal names a stable code and the clause behind it."""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error the ledger raises on purpose."""

    code: str = "LEDGER_ERROR"
    clause: str = ""
    # True once the refusal was saved as its command's outcome (an import's command record).
    recorded: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "clause": self.clause, "message": self.message}


class RuleViolation(LedgerError):
    """A command refused by a rule of the agreement or the law behind it.

    The message never carries personal data: it names orders, codes and amounts only.
    """

    def __init__(self, code: str, clause: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.clause = clause

    def __repr__(self) -> str:
        return f"RuleViolation({self.code!r}, {self.clause!r}, {self.message!r})"


class InvalidCommand(LedgerError):
    """Input that cannot be a command at all: names the field and the rule it breaks."""

    code = "INVALID_COMMAND"

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule

    def as_dict(self) -> dict[str, str]:
        return {**super().as_dict(), "field": self.field}


class NotFound(LedgerError):
    code = "NOT_FOUND"


class Conflict(LedgerError):
    """Another writer changed the same stream first (optimistic concurrency lost)."""

    code = "CONFLICT"


class StorageUnavailable(LedgerError):
    """The database could not be reached or failed; nothing of the command was written."""

    code = "STORAGE_UNAVAILABLE"


class CommandIdReused(LedgerError):
    """The same command_id was sent again with a different payload."""

    code = "COMMAND_ID_REUSED"


class CommandFailed(LedgerError):
    """A command failed in a way no rule foresaw (a bug, an unexpected value): nothing of it
    was written, and the commands around it (in a batch) are not affected. The message names
    the command and the exception's type, never its text (it may quote the input)."""

    code = "COMMAND_FAILED"
