"""Contract formation and payment (3.1.2, 3.1.3), user cancel and mutual termination."""

from __future__ import annotations

from collections.abc import Callable

from ledger.domain import codes
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.order import events as ev
from ledger.domain.order.base import OrderBase


class ContractRules(OrderBase):
    def check_payment_id(
        self,
        payment_id: str,
        method: str,
        amount_fen: int,
        same_payer: Callable[[str], bool],
    ) -> None:
        """A provider's payment id names one payment: stated again with the same method,
        amount and payer it is a repeat; with others it is refused (3.1.3)."""
        self.check_repeat(
            self.payments.get(payment_id),
            [method, amount_fen],
            codes.PAYMENT_ID_REUSED,
            "payment id",
            same_payer,
        )

    def check_payment_acceptable(self, ctx: Ctx, amount_fen: int) -> None:
        """Nothing kept may exceed what is due: a payment is taken up to what is
        outstanding, a re-payment after a refund too (3.1.3)."""
        self.check_open()
        if self.outstanding_fen <= 0:
            raise RuleViolation(
                codes.ALREADY_PAID, f"order {self.order_no} is already paid in full"
            )
        if not self.contract_formed and ctx.at > self.payment_deadline:
            raise RuleViolation(
                codes.PAYMENT_DEADLINE_PASSED,
                f"order {self.order_no}: payment after the deadline forms no contract",
            )
        if amount_fen > self.outstanding_fen:
            raise RuleViolation(
                codes.OVERPAYMENT,
                f"order {self.order_no}: more offered than the "
                f"{self.outstanding_fen} fen outstanding",
            )

    def receive_payment(
        self,
        ctx: Ctx,
        payment_id: str,
        method: str,
        payer_account: str,
        amount_fen: int,
        same_payer: Callable[[str], bool] | None = None,
    ) -> None:
        """Only payment in full forms the contract (3.1.2); a part payment forms nothing.
        ``payer_account`` is the sealed token; ``same_payer`` tells whether a stored token
        seals the payer of this command (for a repeated payment id); without it only the
        very same token is the same payer."""
        same = same_payer or (lambda sealed: sealed == payer_account)
        self.check_payment_id(payment_id, method, amount_fen, same)
        self.check_payment_acceptable(ctx, amount_fen)
        self.emit(
            ev.PaymentReceived,
            ctx,
            payment_id=payment_id,
            method=method,
            payer_account=payer_account,
            amount_fen=amount_fen,
        )
        self.form_contract_if_paid(ctx)

    def form_contract_if_paid(self, ctx: Ctx) -> None:
        """Paid in full, net of refunds, forms the contract (3.1.2, 3.1.3)."""
        if not self.contract_formed and self.covered:
            self.emit(ev.ContractFormed, ctx, paid_total_fen=self.kept_fen)

    def check_cancel_allowed(self) -> None:
        """Raises ORDER_CLOSED; TRANSACTION_ALREADY_COMPLETED (ECL 31) once the transaction
        completed, when neither termination nor a return is open to the user any more; else
        CONTRACT_ALREADY_FORMED (3.1.2) once paid in full: before delivery the way out is
        mutual termination, after it a return (3.3)."""
        self.check_open()
        self.check_not_completed()
        if self.contract_formed and not self.shortage_open:
            way_out = (
                "it was delivered: request a return instead (3.3)"
                if self.is_delivered
                else "ask the seller for mutual termination"
            )
            raise RuleViolation(
                codes.CONTRACT_ALREADY_FORMED,
                f"order {self.order_no} is paid in full; {way_out}",
                clause="3.1.2",
            )

    def cancel_by_user(self, ctx: Ctx, reason: str) -> None:
        """Before formation the user may cancel (3.1.2); on a shortage, also after (3.1.4)."""
        self.check_cancel_allowed()
        ground = "stock_shortage" if self.shortage_open else "user_cancel"
        self.emit(ev.CancelledByUser, ctx, reason=reason)
        self.close(ctx, ground, {})

    def lapse_payment_deadline(self, ctx: Ctx) -> None:
        """Unpaid at the deadline: closed, the contract never formed (3.1.3)."""
        self.check_open()
        if self.contract_formed:
            raise RuleViolation(
                codes.CONTRACT_ALREADY_FORMED,
                f"order {self.order_no} was paid in time",
                clause="3.1.3",
            )
        if ctx.at <= self.payment_deadline:
            raise RuleViolation(
                codes.DEADLINE_NOT_REACHED,
                f"order {self.order_no}: the payment deadline has not passed",
            )
        self.emit(ev.PaymentDeadlineLapsed, ctx, deadline=self.payment_deadline)
        self.close(ctx, "payment_deadline", {})

    def check_termination_can_be_requested(self) -> None:
        self.check_open()
        if not self.contract_formed:
            raise RuleViolation(
                codes.CONTRACT_NOT_FORMED,
                f"order {self.order_no} is not paid in full: the user may simply cancel",
            )
        self.check_not_delivered("3.1.2")
        if self.termination_requested:
            raise RuleViolation(
                codes.TERMINATION_ALREADY_REQUESTED,
                f"order {self.order_no} already has a termination request open",
            )

    def request_mutual_termination(self, ctx: Ctx, requested_by: str, reason: str) -> None:
        """After formation a cancel is a request the seller may accept or decline (CC 562)."""
        self.check_termination_can_be_requested()
        self.emit(ev.MutualTerminationRequested, ctx, requested_by=requested_by, reason=reason)

    def check_termination_requested(self) -> None:
        self.check_open()
        if not self.termination_requested:
            raise RuleViolation(
                codes.TERMINATION_NOT_REQUESTED,
                f"order {self.order_no} has no open termination request",
            )

    def accept_mutual_termination(self, ctx: Ctx) -> None:
        self.check_termination_requested()
        self.emit(ev.MutualTerminationAccepted, ctx)
        self.close(ctx, "mutual_termination", {})

    def decline_mutual_termination(self, ctx: Ctx, reason: str) -> None:
        self.check_termination_requested()
        self.emit(ev.MutualTerminationDeclined, ctx, reason=reason)
