"""Refusals that only the HTTP layer makes (codes in ledger/domain/codes.py)."""

from __future__ import annotations

from ledger.domain import codes
from ledger.domain.errors import LedgerError


class Unauthenticated(LedgerError):
    """No ``Authorization: Bearer`` key, or one unknown or revoked (RFC 6750): 401."""

    catalogued = codes.UNAUTHENTICATED


class Forbidden(LedgerError):
    """The key's role does not allow the request: 403."""

    catalogued = codes.FORBIDDEN


class IdempotencyKeyRequired(LedgerError):
    """A POST without a usable ``Idempotency-Key`` header (IETF httpapi draft): 400."""

    catalogued = codes.IDEMPOTENCY_KEY_REQUIRED


class InvalidParameter(LedgerError):
    """A query parameter, path segment or header that breaks its rule: 400. Names the
    parameter and the rule, never the value."""

    catalogued = codes.INVALID_PARAMETER

    def __init__(self, name: str, rule: str) -> None:
        super().__init__(f"{name}: {rule}")
        self.name = name
        self.rule = rule


class InvalidJson(LedgerError):
    """A body that is not JSON in UTF-8, or nests too deep: 400."""

    catalogued = codes.INVALID_JSON


class RequestTooLarge(LedgerError):
    catalogued = codes.REQUEST_TOO_LARGE


class UnsupportedMediaType(LedgerError):
    catalogued = codes.UNSUPPORTED_MEDIA_TYPE


class InvalidBody(LedgerError):
    """A command body that breaks its model: ``INVALID_COMMAND`` (422), every broken field
    (at most 20) as a JSON pointer and its rule; values are never echoed."""

    catalogued = codes.INVALID_COMMAND

    def __init__(self, field_errors: list[tuple[str, str]]) -> None:
        where, rule = field_errors[0]
        super().__init__(f"{where or 'body'}: {rule}")
        self.field_errors = field_errors
