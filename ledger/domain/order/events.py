"""Order events: what happened to an order, in the past tense; each applies itself to state.

Guards live in the command mixins (``check_*``); an event, once stored, is a fact and its
``apply`` never refuses. Personal fields are sealed tokens, linkage signals are HMAC digests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from ledger.domain.free_text import mark_clear_text
from ledger.domain.order.vocabulary import (
    LOWERS_DUE,
    ClosureGround,
    DeliveryFailure,
    FlagOutcome,
    OrderStatus,
    RefundPurpose,
    ReturnKind,
)
from ledger.domain.topics import topic

Json = dict[str, Any]


@topic("order/Event")
class OrderEvent(Aggregate.Event):
    class_version = 1
    command_id: str


@topic("order/Submitted")
class OrderSubmitted(OrderEvent, Aggregate.Created):
    """``linkage`` maps ``<kind>@<year>`` to the HMAC of the normalised signal under that
    calendar year's linkage key (the order's year and the one before; issue 11, item 5).
    Version 1 mapped ``<kind>`` to an HMAC under the application-wide key: those keys are
    kept as they are (the limits projection reads a key without ``@`` as such)."""

    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: Json) -> None:
        """Nothing to move: v1 linkage keys carry no year, which is how they are told apart."""

    order_no: str
    account_no: str
    lines: list[Json]
    gifts: list[Json]
    promotions: list[Json]
    f_codes: list[str]
    coupons: list[str]
    purchase_type: str
    seller_id: str
    seller_kind: str
    shipping_region: str
    payment_deadline: datetime
    total_due_fen: int
    contact: dict[str, str]
    linkage: dict[str, str]
    limit_counters: list[str]

    def apply(self, agg: Any) -> None:
        agg.order_no = self.order_no
        agg.account_no = self.account_no
        agg.contact = self.contact
        agg.limit_counters = self.limit_counters
        agg.lines = self.lines
        agg.gifts = self.gifts
        agg.f_codes = self.f_codes
        agg.coupons = self.coupons
        agg.purchase_type = self.purchase_type
        agg.shipping_region = self.shipping_region
        agg.payment_deadline = self.payment_deadline
        agg.total_due_fen = self.total_due_fen
        agg.status = OrderStatus.AWAITING_PAYMENT.value
        agg.contract_formed = False
        agg.paid_fen = {}
        agg.refunded_fen = {}
        agg.pending_refunds = {}
        agg.refund_consents = {}
        agg.payments = {}
        agg.completed_refunds = {}
        agg.shipment = None
        agg.shortage_skus = []
        agg.shortage_refunded_fen = 0
        agg.returns = {}
        agg.closed_ground = None
        agg.closed_clause = None
        agg.closed_at = None
        agg.shortage_open = False
        agg.termination_requested = False
        agg.price_error_open = False
        agg.shipped = False
        agg.delivered_at = None
        agg.return_deadline = None
        agg.failed_attempts = []
        agg.unanswered_calls = 0
        agg.refusals = []
        agg.open_return = None
        agg.returns_done = 0
        agg.flags = {}
        agg.after_sales_ended_at = None
        agg.completed_at = None
        agg.retain_until = None
        agg.next_refund_no = 1


@topic("order/PaymentReceived")
class PaymentReceived(OrderEvent):
    payment_id: str
    method: str
    payer_account: str
    amount_fen: int

    def apply(self, agg: Any) -> None:
        agg.paid_fen[self.method] = agg.paid_fen.get(self.method, 0) + self.amount_fen
        # The facts a repeat of this payment id is compared with (payer stays sealed).
        agg.payments[self.payment_id] = {
            "facts": [self.method, self.amount_fen],
            "sealed": self.payer_account,
            "command_id": self.command_id,
        }


@topic("order/ContractFormed")
class ContractFormed(OrderEvent):
    paid_total_fen: int

    def apply(self, agg: Any) -> None:
        agg.contract_formed = True
        agg.status = OrderStatus.PAID.value


@topic("order/CancelledByUser")
class CancelledByUser(OrderEvent):
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: Json) -> None:
        """v1 held the reason in clear; v2 holds it sealed (or "")."""
        mark_clear_text(state, "reason")

    reason: str

    def apply(self, agg: Any) -> None:
        pass


@topic("order/PaymentDeadlineLapsed")
class PaymentDeadlineLapsed(OrderEvent):
    deadline: datetime

    def apply(self, agg: Any) -> None:
        pass


@topic("order/StockShortageDeclared")
class StockShortageDeclared(OrderEvent):
    skus: list[str]

    def apply(self, agg: Any) -> None:
        agg.shortage_open = True
        agg.shortage_skus = sorted({*agg.shortage_skus, *self.skus})


@topic("order/StockShortageResolved")
class StockShortageResolved(OrderEvent):
    resolution: str
    exchange_sku: str | None

    def apply(self, agg: Any) -> None:
        agg.shortage_open = False


@topic("order/MutualTerminationRequested")
class MutualTerminationRequested(OrderEvent):
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: Json) -> None:
        """v1 held the reason in clear; v2 holds it sealed (or "")."""
        mark_clear_text(state, "reason")

    requested_by: str
    reason: str

    def apply(self, agg: Any) -> None:
        agg.termination_requested = True


@topic("order/MutualTerminationAccepted")
class MutualTerminationAccepted(OrderEvent):
    def apply(self, agg: Any) -> None:
        agg.termination_requested = False


@topic("order/MutualTerminationDeclined")
class MutualTerminationDeclined(OrderEvent):
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: Json) -> None:
        """v1 held the reason in clear; v2 holds it sealed (or "")."""
        mark_clear_text(state, "reason")

    reason: str

    def apply(self, agg: Any) -> None:
        agg.termination_requested = False


@topic("order/Closed")
class OrderClosed(OrderEvent):
    ground: ClosureGround
    clause: str
    contract_formed: bool
    evidence: Json

    def apply(self, agg: Any) -> None:
        agg.status = OrderStatus.CLOSED.value
        agg.closed_ground = self.ground
        agg.closed_clause = self.clause
        agg.closed_at = self.timestamp


@topic("order/UserNotified")
class UserNotified(OrderEvent):
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: Json) -> None:
        """v1 held the subject in clear; v2 holds it sealed (or "")."""
        mark_clear_text(state, "subject")

    subject: str
    clause: str

    def apply(self, agg: Any) -> None:
        pass


@topic("order/RefundConsentRecorded")
class RefundConsentRecorded(OrderEvent):
    consent_id: str
    method: str
    destination_account: str

    def apply(self, agg: Any) -> None:
        agg.refund_consents[self.consent_id] = {
            "facts": [self.method],
            "sealed": self.destination_account,
            "command_id": self.command_id,
        }


@topic("order/RefundInitiated")
class RefundInitiated(OrderEvent):
    class_version = 2
    refund_id: str
    method: str
    amount_fen: int
    destination: str
    consent_id: str | None
    due_by: datetime | None
    purpose: RefundPurpose

    @staticmethod
    def upcast_v1_v2(state: Json) -> None:
        """v1 refunds said nothing of why: they lowered what was kept, never the price."""
        state["purpose"] = "unstated"

    def apply(self, agg: Any) -> None:
        agg.pending_refunds[self.refund_id] = {"method": self.method, "amount_fen": self.amount_fen}
        agg.next_refund_no += 1
        if self.purpose in LOWERS_DUE:
            agg.total_due_fen -= self.amount_fen
        if self.purpose == "shortage":
            agg.shortage_refunded_fen += self.amount_fen


@topic("order/RefundCompleted")
class RefundCompleted(OrderEvent):
    refund_id: str
    method: str
    amount_fen: int

    def apply(self, agg: Any) -> None:
        del agg.pending_refunds[self.refund_id]
        agg.completed_refunds[self.refund_id] = self.command_id
        agg.refunded_fen[self.method] = agg.refunded_fen.get(self.method, 0) + self.amount_fen
        agg.after_sales_ended_at = self.timestamp


@topic("order/PriceErrorDetected")
class PriceErrorDetected(OrderEvent):
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: Json) -> None:
        """v1 held the cause in clear; v2 holds it sealed (or "")."""
        mark_clear_text(state, "cause")

    sku: str
    displayed_price_fen: int
    correct_price_fen: int
    cause: str

    def apply(self, agg: Any) -> None:
        agg.price_error_open = True


@topic("order/PriceErrorResolved")
class PriceErrorResolved(OrderEvent):
    resolution: str
    user_consented: bool
    adjusted_total_fen: int | None

    def apply(self, agg: Any) -> None:
        agg.price_error_open = False
        if self.adjusted_total_fen is not None:
            agg.total_due_fen = self.adjusted_total_fen


@topic("order/Shipped")
class Shipped(OrderEvent):
    carrier: str
    tracking_no: str
    estimated_delivery: datetime | None
    promised_delivery: datetime | None

    def apply(self, agg: Any) -> None:
        agg.shipped = True
        agg.status = OrderStatus.SHIPPED.value
        agg.shipment = {
            "facts": [
                self.carrier,
                self.tracking_no,
                self.estimated_delivery,
                self.promised_delivery,
            ],
            "command_id": self.command_id,
        }


@topic("order/DeliveryAttemptFailed")
class DeliveryAttemptFailed(OrderEvent):
    reason: DeliveryFailure

    def apply(self, agg: Any) -> None:
        agg.failed_attempts.append(self.reason)


@topic("order/ContactCallAttempted")
class ContactCallAttempted(OrderEvent):
    answered: bool

    def apply(self, agg: Any) -> None:
        if not self.answered:
            agg.unanswered_calls += 1


@topic("order/DeliveryRefused")
class DeliveryRefused(OrderEvent):
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: Json) -> None:
        """v1 held the reason in clear; v2 holds it sealed (or "")."""
        mark_clear_text(state, "reason")

    quality_reason: bool
    reason: str

    def apply(self, agg: Any) -> None:
        agg.refusals.append(self.quality_reason)
        agg.status = OrderStatus.DELIVERY_REFUSED.value


@topic("order/Delivered")
class Delivered(OrderEvent):
    signer_relation: str
    appearance_accepted: bool
    return_deadline: datetime | None

    def apply(self, agg: Any) -> None:
        agg.delivered_at = self.timestamp
        agg.return_deadline = self.return_deadline
        agg.status = OrderStatus.DELIVERED.value


@topic("order/ReturnRequested")
class ReturnRequested(OrderEvent):
    return_id: str
    kind: ReturnKind
    service_region: str
    visible_damage_claimed: bool
    appearance_accepted_at_signing: bool
    shipping_paid_by: str

    def apply(self, agg: Any) -> None:
        agg.open_return = {"return_id": self.return_id, "kind": self.kind, "received": False}
        agg.status = OrderStatus.RETURN_REQUESTED.value
        # Each step's facts and first command, for repeats of this return id.
        agg.returns[self.return_id] = {
            "requested": {
                "facts": [self.kind, self.service_region, self.visible_damage_claimed],
                "command_id": self.command_id,
            }
        }


@topic("order/ReturnReceived")
class ReturnReceived(OrderEvent):
    return_id: str
    refund_due_by: datetime

    def apply(self, agg: Any) -> None:
        agg.open_return["received"] = True
        agg.open_return["refund_due_by"] = self.refund_due_by
        agg.returns[self.return_id]["received"] = {"facts": [], "command_id": self.command_id}


@topic("order/ReturnInspected")
class ReturnInspected(OrderEvent):
    return_id: str
    gifts_returned: list[str]
    gifts_missing: list[str]
    coupon_policy: str

    def apply(self, agg: Any) -> None:
        agg.open_return = None
        agg.returns_done += 1
        # The case ends here unless a refund follows (RefundCompleted moves it on): ECL 31
        # counts completion from the end of the last after-sales case.
        ended = agg.after_sales_ended_at
        agg.after_sales_ended_at = self.timestamp if ended is None else max(ended, self.timestamp)
        agg.returns[self.return_id]["inspected"] = {
            "facts": sorted(self.gifts_returned),
            "command_id": self.command_id,
        }
        agg.status = OrderStatus.RETURNED.value


@topic("order/GiftPriceCharged")
class GiftPriceCharged(OrderEvent):
    gift_id: str
    price_fen: int

    def apply(self, agg: Any) -> None:
        pass


@topic("order/AbnormalOrderFlagRaised")
class AbnormalOrderFlagRaised(OrderEvent):
    flag_id: str
    criterion: int
    evidence: Json
    automated: bool

    def apply(self, agg: Any) -> None:
        agg.flags[self.flag_id] = {
            "automated": self.automated,
            "outcome": None,
            "raised": {
                "facts": [self.criterion, self.evidence, self.automated],
                "command_id": self.command_id,
            },
        }


@topic("order/AbnormalOrderFlagReviewed")
class AbnormalOrderFlagReviewed(OrderEvent):
    """The human review of a flag (PIPL 24). ``note`` is free text the reviewer typed about
    the order: from version 2 on "" or sealed under the order's subject's main key."""

    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: Json) -> None:
        """v1 held the note in clear; v2 holds it sealed (or "")."""
        mark_clear_text(state, "note")

    flag_id: str
    reviewer_id: str
    outcome: FlagOutcome
    note: str

    def apply(self, agg: Any) -> None:
        agg.flags[self.flag_id]["outcome"] = self.outcome
        agg.flags[self.flag_id]["reviewed"] = {
            "facts": [self.reviewer_id, self.outcome],
            "sealed": self.note,  # compared by its text, not its token (a new nonce each time)
            "command_id": self.command_id,
        }


@topic("order/TransactionCompleted")
class TransactionCompleted(OrderEvent):
    completed_at: datetime
    retain_until: datetime

    def apply(self, agg: Any) -> None:
        agg.completed_at = self.completed_at
        agg.retain_until = self.retain_until


@topic("order/TransactionReopened")
class TransactionReopened(OrderEvent):
    """An after-sales case (a quality return, CPL 24) opened after the transaction
    completed: completion moves to the end of that case (ECL 31, DOMAIN.md section 7), so the
    transaction is open again and completes anew (``TransactionCompleted``) once the case
    ends. ``retain_until`` is the least the record is now kept: three years from the case's
    opening (its end, not yet known, can only be later)."""

    return_id: str  # the case that reopened it
    retain_until: datetime

    def apply(self, agg: Any) -> None:
        agg.completed_at = None
        agg.retain_until = self.retain_until
