"""The order's state vocabulary, written once: the domain sets and checks these words, the
projections (``projections/views``) show them, and the commands take them.

States the ledger sets itself are ``StrEnum`` members (they compare and store as their text);
words a command brings in (a return's kind, a refund's purpose, a closure's ground, a flag's
outcome) are ``Literal`` types, so pydantic refuses any other word at the edge and mypy checks
every comparison against them. An aggregate keeps a state's plain word (``.value``): its state
reaches JSON encoders (orjson) that take no ``str`` subclass as a dict key.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args


class OrderStatus(StrEnum):
    """Where an order stands (``Order.status``, the ``orders`` view's ``status``)."""

    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"  # 3.1.3: the contract is formed
    SHIPPED = "shipped"
    DELIVERY_REFUSED = "delivery_refused"
    DELIVERED = "delivered"
    RETURN_REQUESTED = "return_requested"
    RETURNED = "returned"
    CLOSED = "closed"


class DeliveryStatus(StrEnum):
    """The ``orders`` view's ``delivery_status``; a failed attempt reads ``failed:<reason>``."""

    NOT_SHIPPED = "not_shipped"
    IN_TRANSIT = "in_transit"
    REFUSED = "refused"
    DELIVERED = "delivered"

    @staticmethod
    def failed(reason: DeliveryFailure) -> str:
        return f"failed:{reason}"


class ReturnStatus(StrEnum):
    """A return's progress (3.3): requested, goods received, inspected."""

    REQUESTED = "requested"
    RECEIVED = "received"
    INSPECTED = "inspected"


class RefundStatus(StrEnum):
    INITIATED = "initiated"
    COMPLETED = "completed"


# 3.3, 7D art. 2: a no-reason return within the window, or one for a quality fault.
ReturnKind = Literal["no_reason", "quality"]
# 3.2.4(1), (2), (3), (4): why a delivery attempt failed.
DeliveryFailure = Literal["bad_address", "no_answer", "nobody_to_sign", "force_majeure"]
# 3.1.6, PIPL 24: a person's review of a flag.
FlagOutcome = Literal["confirmed", "dismissed"]

# Why money goes back (ledger/domain/order/refunds.py). A command names one of the first four;
# closures and returns refund with their own purpose; v1 refunds read as ``unstated``.
# Three lower what is due by the amount: the user and the seller agreed a lower price (3.1.7),
# dropped short lines (3.1.4), or the goods came back (CPL 24/25). The others give money back
# without changing the price: a payment returned to be made again, the refunds of a
# termination or a closure (the order then owes nothing: ``OrderBase.due_fen``).
CommandedPurpose = Literal["price_adjustment", "shortage", "termination", "payment_returned"]
RefundPurpose = Literal[CommandedPurpose, "closure", "return", "unstated"]
COMMANDED_PURPOSES: frozenset[str] = frozenset(get_args(CommandedPurpose))
LOWERS_DUE: frozenset[RefundPurpose] = frozenset({"price_adjustment", "shortage", "return"})

# The grounds a seller may close an order on, each with the evidence its clause needs.
SellerGround = Literal[
    "purchase_limit",
    "abnormal_order",
    "bad_address",
    "no_answer",
    "nobody_to_sign",
    "force_majeure",
    "delivery_refused",
    "account_restricted",
    "account_terminated",
]
# Grounds that come from their own commands (cancel, lapse, shortage, termination, price error).
CommandGround = Literal[
    "user_cancel",
    "payment_deadline",
    "stock_shortage",
    "mutual_termination",
    "price_error_terminated",
]
ClosureGround = Literal[SellerGround, CommandGround]
SELLER_GROUNDS: frozenset[str] = frozenset(get_args(SellerGround))
