"""Refunds (3.1.4, 7D art. 14): to the original account, method by method, never over."""

from __future__ import annotations

from datetime import datetime, timedelta

from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.order import events as ev
from ledger.domain.order.base import OrderBase

REFUND_DUE_DAYS = 7


class RefundRules(OrderBase):
    def record_refund_consent(
        self, ctx: Ctx, consent_id: str, method: str, destination_account: str
    ) -> None:
        """The user's consent to a destination other than the original account (3.1.4)."""
        self.check_open()
        self.emit(
            ev.RefundConsentRecorded,
            ctx,
            consent_id=consent_id,
            method=method,
            destination_account=destination_account,
        )

    def check_refund(self, method: str, amount_fen: int, consent_id: str | None) -> None:
        self.check_not_completed()
        if amount_fen > self.refundable_fen(method):
            raise RuleViolation(
                "OVER_REFUND",
                "3.1.4",
                f"order {self.order_no}: more asked back than the "
                f"{self.refundable_fen(method)} fen refundable on that method",
            )
        if consent_id is not None and self.refund_consents.get(consent_id) != method:
            # Refunds go back method by method (3.1.4): a consent redirects only its own.
            raise RuleViolation(
                "REFUND_DESTINATION_NOT_CONSENTED",
                "3.1.4",
                f"order {self.order_no}: no recorded consent of that id for that method",
            )

    def initiate_refund(
        self,
        ctx: Ctx,
        method: str,
        amount_fen: int,
        consent_id: str | None = None,
        due_by: datetime | None = None,
    ) -> str:
        """Refund to the original account unless a recorded consent names another (3.1.4)."""
        self.check_refund(method, amount_fen, consent_id)
        refund_id = f"{self.order_no}/R{self.next_refund_no}"
        self.emit(
            ev.RefundInitiated,
            ctx,
            refund_id=refund_id,
            method=method,
            amount_fen=amount_fen,
            destination="consented" if consent_id else "original",
            consent_id=consent_id,
            due_by=due_by or ctx.at + timedelta(days=REFUND_DUE_DAYS),
        )
        return refund_id

    def refund_everything(
        self, ctx: Ctx, withheld_fen: int = 0, due_by: datetime | None = None
    ) -> None:
        """Give back, per method, all that was paid and not yet given back (ECL 49, 3.1.4),
        less ``withheld_fen`` (a gift kept, 3.1.8), taken from the largest payments first."""
        assert withheld_fen >= 0
        for method in sorted(self.paid_fen, key=lambda m: (-self.refundable_fen(m), m)):
            outstanding_fen = self.refundable_fen(method)
            kept_fen = min(withheld_fen, outstanding_fen)
            withheld_fen -= kept_fen
            if outstanding_fen - kept_fen > 0:
                self.initiate_refund(ctx, method, outstanding_fen - kept_fen, due_by=due_by)

    def complete_refund(self, ctx: Ctx, refund_id: str) -> None:
        """Settlement: allowed on a closed order, since closure is what owes the refund."""
        pending = self.pending_refunds.get(refund_id)
        if pending is None:
            raise RuleViolation(
                "REFUND_NOT_PENDING",
                "3.1.4",
                f"order {self.order_no}: no refund of that id is under way",
            )
        self.emit(
            ev.RefundCompleted,
            ctx,
            refund_id=refund_id,
            method=pending["method"],
            amount_fen=pending["amount_fen"],
        )
