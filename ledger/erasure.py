"""Erasure by crypto-shredding (PIPL 47; DOMAIN.md section 7), the service layer's half.

The command ``request_erasure`` records the request and its outcome on the subject's
lifecycle stream (ledger/domain/data_subject.py). What happens after the save is here:

- an outcome that did not erase (refused under a legal hold, deferred under a retention) is
  reported as its refusal (``LEGAL_HOLD``; ``RETENTION_REQUIRED`` with the date), on the first
  send and on every repeat of the same command id: the request and its refusal are facts in
  the log, the caller still sees that nothing was erased;
- an erasure is finished by destroying the subject's keys, only once ``SubjectErased`` is
  saved (a key destroyed before a failed save would erase data the log says is kept). A
  crash between the save and the destroy leaves an erased subject with a live key: the
  retention run (ledger/retention_run.py) finds and finishes it, and so does a repeat of the
  command.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ledger.domain import codes
from ledger.domain.data_subject import RetentionRequired
from ledger.domain.errors import LedgerError, RuleViolation
from ledger.key_admin import expire_linkage
from ledger.keystore import KeyStore

if TYPE_CHECKING:
    from ledger.application import CommandResult


class ErasureRetentionRequired(RetentionRequired):
    """A deferred erasure, reported: ``RETENTION_REQUIRED`` with ``retain_until``."""


def refusal_of(result: CommandResult) -> LedgerError | None:
    """The refusal a saved command's result names (an erasure refused or deferred), or None.
    The message is the one the domain wrote (orders and dates, never personal data)."""
    found: dict[str, Any] = result.result
    if found.get("outcome") not in ("refused", "deferred"):
        return None
    message = f"{result.command_type} {result.command_id}: {found['message']}"
    if found["code"] == codes.RETENTION_REQUIRED.code:
        refusal: LedgerError = ErasureRetentionRequired(
            message, datetime.fromisoformat(found["retain_until"])
        )
    else:
        refusal = RuleViolation(codes.BY_CODE[found["code"]], message)
    refusal.recorded = True  # the request and its refusal are in the log
    return refusal


def settle(keystore: KeyStore, result: CommandResult) -> CommandResult | LedgerError:
    """After a command is saved (or found saved before): an erasure's keys destroyed, a
    refused or deferred erasure as its refusal; any other result as it is."""
    found = result.result
    if found.get("outcome") == "erased":
        destroy_keys(keystore, found["subject_id"], datetime.fromisoformat(found["erased_at"]))
    return refusal_of(result) or result


def destroy_keys(keystore: KeyStore, subject_id: str, at: datetime) -> bool:
    """Crypto-shred every key of ``subject_id`` (scope ALL, the key store's default), and, in
    the same step, every linkage year key due by ``at`` (``expire_linkage``): the subject's
    linkage digests in its orders' events and in the limit counters (stream ids and
    ``LimitCounterOpened.signal``, which an append-only log cannot rewrite) then confirm no
    guess. An erasure comes only once every retention of its orders has ended (``check_erasable``:
    three years from completion, ECL 31), past 1 January two years after each order's year,
    when the keys its digests were made under are due. True if a live subject key was
    destroyed now. Idempotent: a destroyed key stays destroyed."""
    destroyed = keystore.destroy(subject_id, at)
    expire_linkage(keystore, at)
    return destroyed
