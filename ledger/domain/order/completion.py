"""Completion of a transaction (ECL 31, DOMAIN.md section 7): the date retention counts from.

Closed before delivery: the closure, once every refund is done. Delivered: the later of
the return-window end and the end of the last after-sales case (its last refund, or its
inspection when nothing was refunded). An after-sales case opened after completion (a
quality return, CPL 24) reopens the transaction (``reopen_for_case``): it completes again,
later, when that case ends, and ``retain_until`` moves with it.
"""

from __future__ import annotations

from datetime import datetime

from ledger.domain import codes
from ledger.domain.china_time import retention_end
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
        """Record ``completed_at`` and ``retain_until`` = completion + 3 years on the China
        calendar (``retention_end``: 29 Feb becomes 28 Feb, a window's 24:00 counts as its
        last day). Raises ``TRANSACTION_ALREADY_COMPLETED`` (ECL 31) if it already is,
        ``TRANSACTION_NOT_COMPLETE`` while a refund, a return or the window is open."""
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
            retain_until=retention_end(completed_at, RETENTION_YEARS),
        )

    def reopen_for_case(self, ctx: Ctx, return_id: str) -> None:
        """A case opened now on a completed transaction: it is open again, kept at least
        until three years from now (its completion will be the case's end, later still)."""
        assert self.completed_at is not None, "only a completed transaction is reopened"
        self.emit(
            ev.TransactionReopened,
            ctx,
            return_id=return_id,
            retain_until=retention_end(ctx.at, RETENTION_YEARS),
        )
