"""Deterministic stream ids from business keys, so every writer finds the same stream."""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID, uuid5

# Fixed for all time: changing it would orphan every stored stream.
LEDGER_NAMESPACE = UUID("6f0b7c1e-3d2a-5b8e-9c41-2a7d0e5f1b93")


@lru_cache(maxsize=100_000)
def stream_id(kind: str, key: str) -> UUID:
    return uuid5(LEDGER_NAMESPACE, f"{kind}:{key}")


def order_id(order_no: str) -> UUID:
    return stream_id("order", order_no)


def entitlement_id(code: str) -> UUID:
    return stream_id("entitlement", code)


def account_id(account_no: str) -> UUID:
    return stream_id("account", account_no)


def promotion_id(promotion_no: str) -> UUID:
    return stream_id("promotion", promotion_no)


def limit_rule_id(sku: str) -> UUID:
    return stream_id("limit-rule", sku)


def limit_counter_id(sku: str, period_start: str, signal: str) -> UUID:
    return stream_id("limit-counter", f"{sku}|{period_start}|{signal}")


def data_subject_id(subject_id: str) -> UUID:
    """The lifecycle stream of a data subject (ledger/domain/data_subject.py)."""
    return stream_id("data-subject", subject_id)


def command_record_id(command_id: str) -> UUID:
    return stream_id("command", command_id)


def payment_claim_id(payment_id: str) -> UUID:
    """The stream that holds a provider's payment id for the one order it paid."""
    return stream_id("payment-id", payment_id)
