"""State every order rule reads, and the one way rules emit events."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation

if TYPE_CHECKING:
    from uuid import UUID


class OrderBase:
    if TYPE_CHECKING:
        id: UUID
        version: int
        order_no: str
        account_no: str
        contact: dict[str, str]
        limit_counters: list[str]
        lines: list[dict[str, Any]]
        gifts: list[dict[str, Any]]
        f_codes: list[str]
        coupons: list[str]
        purchase_type: str
        shipping_region: str
        payment_deadline: datetime
        total_due_fen: int
        status: str
        contract_formed: bool
        paid_fen: dict[str, int]
        refunded_fen: dict[str, int]
        pending_refunds: dict[str, dict[str, Any]]
        refund_consents: dict[str, str]
        closed_ground: str | None
        closed_clause: str | None
        closed_at: datetime
        shortage_open: bool
        termination_requested: bool
        price_error_open: bool
        shipped: bool
        delivered_at: datetime | None
        return_deadline: datetime | None
        failed_attempts: list[str]
        unanswered_calls: int
        refusals: list[bool]
        open_return: dict[str, Any] | None
        returns_done: int
        flags: dict[str, dict[str, Any]]
        after_sales_ended_at: datetime | None
        completed_at: datetime | None
        next_refund_no: int

        def trigger_event(self, event_class: Any, **kwargs: Any) -> None: ...

        # Provided by ClosureRules and RefundRules; every closure path goes through them.
        def close(self, ctx: Ctx, ground: str, evidence: dict[str, Any]) -> None: ...

        def refund_everything(
            self, ctx: Ctx, withheld_fen: int = 0, due_by: datetime | None = None
        ) -> None: ...

        def check_flag_allows_close(self, flag_id: str) -> None: ...

        def form_contract_if_paid(self, ctx: Ctx) -> None: ...

    def emit(self, event_class: Any, ctx: Ctx, **fields: Any) -> None:
        self.trigger_event(event_class, timestamp=ctx.at, command_id=ctx.command_id, **fields)

    # -- money, derived from the events -------------------------------------------------
    @property
    def paid_total_fen(self) -> int:
        return sum(self.paid_fen.values())

    @property
    def kept_fen(self) -> int:
        """Paid and not given back or on its way back: what counts toward the price."""
        returned_fen = sum(self.refunded_fen.values())
        pending_fen = sum(r["amount_fen"] for r in self.pending_refunds.values())
        return self.paid_total_fen - returned_fen - pending_fen

    def pending_fen(self, method: str) -> int:
        return sum(r["amount_fen"] for r in self.pending_refunds.values() if r["method"] == method)

    def refundable_fen(self, method: str) -> int:
        """Paid by this method, less refunds done or under way (3.1.4; never refund more)."""
        return (
            self.paid_fen.get(method, 0)
            - self.refunded_fen.get(method, 0)
            - self.pending_fen(method)
        )

    @property
    def is_closed(self) -> bool:
        return self.closed_ground is not None

    @property
    def is_delivered(self) -> bool:
        return self.delivered_at is not None

    # -- guards shared by several clauses -----------------------------------------------
    def check_open(self) -> None:
        """A closed order takes no commercial command; only its settlement may follow."""
        if self.is_closed:
            raise RuleViolation(
                "ORDER_CLOSED",
                self.closed_clause or "",
                f"order {self.order_no} was closed ({self.closed_ground}) and takes no command",
            )

    def check_not_completed(self) -> None:
        if self.completed_at is not None:
            raise RuleViolation(
                "TRANSACTION_ALREADY_COMPLETED",
                "ECL 31",
                f"order {self.order_no} is complete; its record is kept, not changed",
            )

    def check_not_delivered(self, clause: str) -> None:
        if self.is_delivered:
            raise RuleViolation(
                "ALREADY_DELIVERED", clause, f"order {self.order_no} was already delivered"
            )
