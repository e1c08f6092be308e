"""State every order rule reads, and the one way rules emit events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ledger.domain import codes
from ledger.domain.codes import ErrorCode
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.repeats import RepeatedFact

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
        refund_consents: dict[str, dict[str, Any]]
        payments: dict[str, dict[str, Any]]
        completed_refunds: dict[str, str]
        shipment: dict[str, Any] | None
        shortage_skus: list[str]
        shortage_refunded_fen: int
        returns: dict[str, dict[str, Any]]
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
        retain_until: datetime | None
        next_refund_no: int

        def trigger_event(self, event_class: Any, **kwargs: Any) -> None: ...

        # Provided by ClosureRules and RefundRules; every closure path goes through them.
        def close(self, ctx: Ctx, ground: str, evidence: dict[str, Any]) -> None: ...

        def refund_everything(
            self,
            ctx: Ctx,
            purpose: str,
            withheld_fen: int = 0,
            due_by: datetime | None = None,
        ) -> None: ...

        def check_flag_allows_close(self, flag_id: str) -> None: ...

        def form_contract_if_paid(self, ctx: Ctx) -> None: ...

        # Provided by ContractRules.
        def check_termination_requested(self) -> None: ...

        def accept_mutual_termination(self, ctx: Ctx) -> None: ...

        # Provided by CompletionRules.
        def reopen_for_case(self, ctx: Ctx, return_id: str) -> None: ...

    def emit(self, event_class: Any, ctx: Ctx, **fields: Any) -> None:
        self.trigger_event(event_class, timestamp=ctx.at, command_id=ctx.command_id, **fields)

    # -- money: defined here once; every rule reads these (3.1.2-3.1.4, 3.1.7) ------------
    # State the events keep: ``paid_fen`` and ``refunded_fen`` per method, ``pending_refunds``
    # by refund id, and ``total_due_fen``, the price agreed now: the submission's total, a
    # price error's adjusted total (3.1.7), less the refunds that lower it (price
    # adjustments, short lines, returns: ``events.LOWERS_DUE``).
    @property
    def paid_total_fen(self) -> int:
        return sum(self.paid_fen.values())

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
    def kept_fen(self) -> int:
        """Paid and not given back or on its way back: what counts toward the price."""
        return sum(self.refundable_fen(method) for method in self.paid_fen)

    @property
    def due_fen(self) -> int:
        """What the user owes for the order: the agreed price, or nothing once it is closed
        (a closure refunds everything, ECL 49). Nothing kept may exceed it."""
        return 0 if self.is_closed else self.total_due_fen

    @property
    def outstanding_fen(self) -> int:
        """What may still be paid: a payment beyond it is refused (3.1.3)."""
        return max(self.due_fen - self.kept_fen, 0)

    @property
    def covered(self) -> bool:
        """What is kept covers what is due: the condition for shipping and delivery (3.1.3)."""
        return self.kept_fen >= self.due_fen

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
                codes.ORDER_CLOSED,
                f"order {self.order_no} was closed ({self.closed_ground}) and takes no command",
                clause=self.closed_clause or "",
            )

    def check_not_completed(self) -> None:
        if self.completed_at is not None:
            raise RuleViolation(
                codes.TRANSACTION_ALREADY_COMPLETED,
                f"order {self.order_no} is complete; its record is kept, not changed",
            )

    def check_not_delivered(self, clause: str) -> None:
        if self.is_delivered:
            raise RuleViolation(
                codes.ALREADY_DELIVERED,
                f"order {self.order_no} was already delivered",
                clause=clause,
            )

    def check_repeat(
        self,
        step: dict[str, Any] | None,
        facts: list[Any],
        code: ErrorCode,
        what: str,
        same_sealed: Callable[[str], bool] | None = None,
        *,
        clause: str | None = None,
    ) -> None:
        """A step already recorded under the same external id: with the same facts it is a
        repeat (``RepeatedFact``: the first outcome answers); with others it is refused
        with ``code`` (under ``clause`` when the entry is cited per raise). Sealed facts are
        compared by ``same_sealed``, given the token."""
        if step is None:
            return
        same = step["facts"] == facts
        if same and same_sealed is not None:
            same = same_sealed(step["sealed"])
        if same:
            raise RepeatedFact(step["command_id"])
        raise RuleViolation(
            code, f"order {self.order_no}: that {what} was recorded with other facts", clause=clause
        )
