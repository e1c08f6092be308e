"""The Order aggregate: one stream per order, its rules grouped by clause in mixins."""

from __future__ import annotations

from ledger.domain.context import Ctx
from ledger.domain.ids import order_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.order import events as ev
from ledger.domain.order.abnormal import AbnormalOrderRules
from ledger.domain.order.closure import ClosureRules
from ledger.domain.order.completion import CompletionRules
from ledger.domain.order.contract import ContractRules
from ledger.domain.order.delivery import DeliveryRules
from ledger.domain.order.price_error import PriceErrorRules
from ledger.domain.order.refunds import RefundRules
from ledger.domain.order.returns import ReturnRules
from ledger.domain.order.shortage import ShortageRules
from ledger.domain.order.submission import Submission


class Order(
    ContractRules,
    ShortageRules,
    PriceErrorRules,
    ClosureRules,
    RefundRules,
    DeliveryRules,
    ReturnRules,
    AbnormalOrderRules,
    CompletionRules,
    JournaledAggregate,
):
    TOPIC = "mall-ledger/order"
    Event = ev.OrderEvent
    Created = ev.OrderSubmitted

    def stream_label(self) -> str:
        return f"order {self.order_no}"

    @classmethod
    def submit(
        cls,
        ctx: Ctx,
        submission: Submission,
        *,
        total_due_fen: int,
        contact: dict[str, str],
        limit_counters: list[str],
    ) -> Order:
        """Checks that need other streams (entitlements, limits, account, promotions) are
        the application's; what the order alone can check is in ``submission.py``."""
        return cls._create(
            ev.OrderSubmitted,
            id=order_id(submission["order_no"]),
            timestamp=ctx.at,
            command_id=ctx.command_id,
            **submission,
            total_due_fen=total_due_fen,
            contact=contact,
            limit_counters=limit_counters,
        )
