"""Completion of a transaction (ECL 31, DOMAIN.md section 7): the date retention counts from.

Closed before delivery: the closure, once every refund is done. Delivered: the later of
the return-window end and the end of the last after-sales case.
"""

from __future__ import annotations

from datetime import datetime

from ledger.domain import codes
from ledger.domain.china_time import add_years_china
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.order import events as ev
from ledger.domain.order.base import OrderBase

RETENTION_YEARS = 3


class CompletionRules(OrderBase):
    def completion_time(self, ctx: Ctx) -> datetime | None:
        """When the transaction completed, or None while something is still open."""
        if self.pending_refunds or self.open_return is not None:
            return None
        moments: list[datetime] = []
        if self.after_sales_ended_at is not None:
            moments.append(self.after_sales_ended_at)
        if self.is_closed:
            moments.append(self.closed_at)
        elif self.delivered_at is not None:
            moments.append(self.return_deadline or self.delivered_at)
        else:
            return None
        done = max(moments)
        return done if done <= ctx.at else None

    def complete_transaction(self, ctx: Ctx) -> None:
        self.check_not_completed()
        completed_at = self.completion_time(ctx)
        if completed_at is None:
            raise RuleViolation(
                codes.TRANSACTION_NOT_COMPLETE,
                f"order {self.order_no}: refunds, a return or the return window are still open",
            )
        self.emit(
            ev.TransactionCompleted,
            ctx,
            completed_at=completed_at,
            retain_until=add_years_china(completed_at, RETENTION_YEARS),
        )
