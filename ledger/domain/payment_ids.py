"""A provider's payment id names one real payment in the whole ledger (3.1.3).

One small stream per payment id, written in the same transaction as the payment: two
writers taking the same id (for one order or two) both create it, and the optimistic-
concurrency insert lets exactly one of them commit (the other gets ``CONFLICT``; on retry
it finds the claim). The payment's facts (method, amount, sealed payer) live in the order's
``PaymentReceived``; the claim says which order took the id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from ledger.domain import codes
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.ids import payment_claim_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.topics import topic


@topic("payment-id/Event")
class PaymentIdEvent(Aggregate.Event):
    class_version = 1
    command_id: str


@topic("payment-id/Claimed")
class PaymentIdClaimed(PaymentIdEvent, Aggregate.Created):
    payment_id: str
    order_no: str

    def apply(self, agg: Any) -> None:
        agg.payment_id = self.payment_id
        agg.order_no = self.order_no


class PaymentIdClaim(JournaledAggregate):
    TOPIC = "mall-ledger/payment-id"
    Event = PaymentIdEvent
    Created = PaymentIdClaimed

    if TYPE_CHECKING:
        payment_id: str
        order_no: str

    @classmethod
    def claim(cls, ctx: Ctx, payment_id: str, order_no: str) -> PaymentIdClaim:
        return cls._create(
            PaymentIdClaimed,
            id=payment_claim_id(payment_id),
            timestamp=ctx.at,
            command_id=ctx.command_id,
            payment_id=payment_id,
            order_no=order_no,
        )

    def check_same_order(self, order_no: str) -> None:
        """A payment already counted for one order never pays another (3.1.3)."""
        if order_no != self.order_no:
            raise RuleViolation(
                codes.PAYMENT_ID_REUSED,
                f"order {order_no}: that payment id already paid another order",
            )
