"""Refunds (3.1.4, 7D art. 14): to the original account, method by method, never over;
each says why money goes back, and what is due follows from that.

On an order not yet delivered a refund is one of (``purpose``):

- ``price_adjustment``: a lower price agreed with the user (3.1.7); lowers what is due.
- ``shortage``: the short lines of a declared shortage are dropped by agreement and the
  rest ships (3.1.4); lowers what is due, at most by the short lines' value, and resolves
  the shortage.
- ``termination``: the start of an agreed termination (3.1.2, CC 562): only while a mutual
  termination request is open; the order closes and everything else is refunded too.
- ``payment_returned``: a payment given back to be made again (another method, say);
  what is due stays, so the order is not covered until it is paid again. Never after
  shipping: what shipped stays paid for (3.1.3).

A price adjustment or a shortage refund of all that is due would leave the goods unpaid:
that is a termination, and is refused as anything else. After delivery a price adjustment
(a goodwill refund) may take the price to nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from ledger.domain import codes
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.order import events as ev
from ledger.domain.order.base import OrderBase
from ledger.domain.order.submission import line_total_fen
from ledger.domain.order.vocabulary import COMMANDED_PURPOSES, LOWERS_DUE, CommandedPurpose
from ledger.domain.repeats import RepeatedFact

REFUND_DUE_DAYS = 7


class RefundRules(OrderBase):
    def record_refund_consent(
        self,
        ctx: Ctx,
        consent_id: str,
        method: str,
        destination_account: str,
        same_destination: Callable[[str], bool],
    ) -> None:
        """The user's consent to a destination other than the original account (3.1.4).
        A consent id names one consent on the order: stated again with the same method and
        destination it is a repeat, with others it is refused (it never changes)."""
        self.check_repeat(
            self.refund_consents.get(consent_id),
            [method],
            codes.REFUND_CONSENT_ID_REUSED,
            "consent id",
            same_destination,
        )
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
                codes.OVER_REFUND,
                f"order {self.order_no}: more asked back than the "
                f"{self.refundable_fen(method)} fen refundable on that method",
            )
        consent = self.refund_consents.get(consent_id) if consent_id is not None else None
        if consent_id is not None and (consent is None or consent["facts"] != [method]):
            # Refunds go back method by method (3.1.4): a consent redirects only its own.
            raise RuleViolation(
                codes.REFUND_DESTINATION_NOT_CONSENTED,
                f"order {self.order_no}: no recorded consent for that method and destination",
            )

    def check_refund_purpose(self, purpose: str, amount_fen: int) -> None:
        """What each purpose needs on top of ``check_refund`` (see the module docstring)."""
        if purpose == "termination":
            self.check_termination_requested()
            return
        self.check_open()
        if purpose == "payment_returned" and self.shipped:
            raise RuleViolation(
                codes.SHIPPED_ORDER_STAYS_PAID,
                f"order {self.order_no} has shipped: a payment cannot be returned to be made again",
            )
        if purpose == "shortage":
            self.check_shortage_refund(amount_fen)
        lowers_due = purpose in LOWERS_DUE
        if lowers_due and not self.is_delivered and amount_fen >= self.due_fen:
            raise RuleViolation(
                codes.FULL_REFUND_IS_TERMINATION,
                f"order {self.order_no}: a refund of all {self.due_fen} fen due leaves the "
                "goods unpaid; terminate the order instead",
            )

    def check_shortage_refund(self, amount_fen: int) -> None:
        """3.1.4: a shortage refund needs a declared shortage; all shortage refunds together
        are at most what the lines ever declared short cost."""
        if not self.shortage_open:
            raise RuleViolation(
                codes.SHORTAGE_NOT_DECLARED, f"order {self.order_no} has no open shortage"
            )
        short_fen = sum(
            line_total_fen(line) for line in self.lines if line["sku"] in self.shortage_skus
        )
        if self.shortage_refunded_fen + amount_fen > short_fen:
            raise RuleViolation(
                codes.SHORTAGE_REFUND_TOO_LARGE,
                f"order {self.order_no}: more asked back than the short lines' {short_fen} fen, "
                f"less the {self.shortage_refunded_fen} fen that went back already",
            )

    def initiate_refund(
        self,
        ctx: Ctx,
        method: str,
        amount_fen: int,
        purpose: CommandedPurpose,
        consent_id: str | None = None,
    ) -> str:
        """A commanded refund, to the original account unless a recorded consent names
        another (3.1.4); ``purpose`` says why, and the order follows (module docstring)."""
        assert purpose in COMMANDED_PURPOSES, purpose
        self.check_refund(method, amount_fen, consent_id)
        self.check_refund_purpose(purpose, amount_fen)
        refund_id = self.start_refund(ctx, method, amount_fen, purpose, consent_id)
        if purpose == "shortage":
            self.emit(ev.StockShortageResolved, ctx, resolution="refund_short", exchange_sku=None)
        elif purpose == "termination":
            self.accept_mutual_termination(ctx)
        return refund_id

    def start_refund(
        self,
        ctx: Ctx,
        method: str,
        amount_fen: int,
        purpose: str,
        consent_id: str | None = None,
        due_by: datetime | None = None,
    ) -> str:
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
            purpose=purpose,
        )
        return refund_id

    def refund_everything(
        self,
        ctx: Ctx,
        purpose: str,
        withheld_fen: int = 0,
        due_by: datetime | None = None,
    ) -> None:
        """Give back, per method, all that was paid and not yet given back (ECL 49, 3.1.4),
        less ``withheld_fen`` (a gift kept, 3.1.8), taken from the largest payments first."""
        assert withheld_fen >= 0
        for method in sorted(self.paid_fen, key=lambda m: (-self.refundable_fen(m), m)):
            outstanding_fen = self.refundable_fen(method)
            kept_fen = min(withheld_fen, outstanding_fen)
            withheld_fen -= kept_fen
            if outstanding_fen - kept_fen > 0:
                self.start_refund(ctx, method, outstanding_fen - kept_fen, purpose, due_by=due_by)

    def complete_refund(self, ctx: Ctx, refund_id: str) -> None:
        """Settlement: allowed on a closed order, since closure is what owes the refund.
        The provider's confirmation of a refund already completed is a repeat."""
        if refund_id in self.completed_refunds:
            raise RepeatedFact(self.completed_refunds[refund_id])
        pending = self.pending_refunds.get(refund_id)
        if pending is None:
            raise RuleViolation(
                codes.REFUND_NOT_PENDING,
                f"order {self.order_no}: no refund of that id is under way",
            )
        self.emit(
            ev.RefundCompleted,
            ctx,
            refund_id=refund_id,
            method=pending["method"],
            amount_fen=pending["amount_fen"],
        )
