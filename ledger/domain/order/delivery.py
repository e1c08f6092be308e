"""Delivery (3.2): ship only a formed, fully paid contract (3.1.3); attempts, calls,
refusals; delivered = signed by the user, family, a designated recipient or an agent (3.2.3)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.domain import codes
from ledger.domain.china_time import end_of_day_after
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.order import events as ev
from ledger.domain.order.base import OrderBase
from ledger.domain.order.vocabulary import DeliveryFailure

SIGNER_RELATIONS = ("self", "family", "designated_recipient", "agent")


class DeliveryRules(OrderBase):
    def check_covered(self, step: str) -> None:
        """3.1.3: the goods go out only against the price: what is kept (paid, less refunds
        done or under way) covers what is due."""
        if not self.contract_formed or not self.covered:
            raise RuleViolation(
                codes.NOT_PAID,
                f"order {self.order_no}: {self.kept_fen} fen kept of {self.due_fen} fen due: "
                f"no {step}",
            )

    def check_shipment(self, facts: list[Any]) -> None:
        """One shipment per order: the same carrier, tracking number and times again are
        a repeat of it; anything else is refused."""
        self.check_repeat(self.shipment, facts, codes.ALREADY_SHIPPED, "shipment", clause="3.2")

    def check_can_ship(self) -> None:
        self.check_open()
        self.check_covered("shipping")
        if self.termination_requested:
            raise RuleViolation(
                codes.TERMINATION_PENDING,
                f"order {self.order_no}: answer the termination request before shipping",
            )
        if self.shortage_open:
            raise RuleViolation(
                codes.SHORTAGE_UNRESOLVED, f"order {self.order_no}: shortage not resolved"
            )
        if self.price_error_open:
            # 3.1.7: the platform settles a price error with the user; shipping first would
            # decide it for them.
            raise RuleViolation(
                codes.PRICE_ERROR_UNRESOLVED, f"order {self.order_no}: price error open"
            )

    def ship(
        self,
        ctx: Ctx,
        carrier: str,
        tracking_no: str,
        estimated_delivery: datetime | None,
        promised_delivery: datetime | None,
    ) -> None:
        """A shown delivery time is an estimate, not a promise (3.2.2): kept apart."""
        self.check_shipment([carrier, tracking_no, estimated_delivery, promised_delivery])
        self.check_can_ship()
        self.emit(
            ev.Shipped,
            ctx,
            carrier=carrier,
            tracking_no=tracking_no,
            estimated_delivery=estimated_delivery,
            promised_delivery=promised_delivery,
        )

    def check_in_transit(self, clause: str) -> None:
        self.check_open()
        if not self.shipped:
            raise RuleViolation(
                codes.NOT_SHIPPED, f"order {self.order_no} has not shipped", clause=clause
            )
        self.check_not_delivered(clause)
        if self.refusals:
            raise RuleViolation(
                codes.DELIVERY_REFUSED,
                f"order {self.order_no}: the user refused delivery",
                clause=clause,
            )

    def record_delivery_failure(self, ctx: Ctx, reason: DeliveryFailure) -> None:
        self.check_in_transit("3.2.4")
        self.emit(ev.DeliveryAttemptFailed, ctx, reason=reason)

    def record_contact_call(self, ctx: Ctx, answered: bool) -> None:
        """3.2.4(2): two unanswered calls to the reserved phone allow a closure."""
        self.check_in_transit("3.2.4(2)")
        self.emit(ev.ContactCallAttempted, ctx, answered=answered)

    def refuse_delivery(self, ctx: Ctx, quality_reason: bool, reason: str) -> None:
        """Non-quality refusals count toward 6.1(5) and resale criterion 3.1.6(4)."""
        self.check_in_transit("3.2.3")
        self.emit(ev.DeliveryRefused, ctx, quality_reason=quality_reason, reason=reason)

    def deliver(self, ctx: Ctx, signer_relation: str, return_window_days: int) -> None:
        """Signing accepts the goods' appearance (3.2.3) and starts the no-reason window
        (CPL 25), except for enterprise/government group purchases (3.3.2)."""
        self.check_in_transit("3.2.3")
        self.check_covered("delivery")
        if signer_relation not in SIGNER_RELATIONS:
            raise RuleViolation(
                codes.SIGNER_NOT_AUTHORISED,
                f"order {self.order_no}: that signer cannot sign for the user",
            )
        deadline = (
            end_of_day_after(ctx.at, return_window_days)
            if self.purchase_type == "consumer"
            else None
        )
        self.emit(
            ev.Delivered,
            ctx,
            signer_relation=signer_relation,
            appearance_accepted=True,
            return_deadline=deadline,
        )
