"""Order state: one row per order, as the Order aggregate would answer, plus its last position.

Queries: by order number; by account; by status and submission time; by seller. The contact
details stay sealed tokens (unsealed at read time by a role allowed to, DOMAIN.md §7), until
the subject is erased or its direct identifiers are removed: then each reads ``[erased]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ledger.domain import data_subject as ds
from ledger.domain.ids import order_id
from ledger.domain.order import events as ev
from ledger.domain.order.vocabulary import LOWERS_DUE, DeliveryStatus, OrderStatus, ReturnStatus
from ledger.sealing import ERASED
from projections.base import Handler, Projection, topic_of
from projections.batch import Batch
from projections.events import Event, when
from projections.schema import Table, columns

ORDERS = Table(
    name="orders",
    columns=columns(
        "stream_id text, order_no text, account_no text, seller_id text, seller_kind text, "
        "purchase_type text, shipping_region text, status text, contract_formed bool, "
        "total_due_fen int, paid_fen int, refunded_fen int, pending_refund_fen int, "
        "paid_by_method json, refunded_by_method json, gift_charged_fen int, "
        "closed_ground text, closed_clause text, closed_at ts, shortage_open bool, "
        "price_error_open bool, termination_requested bool, delivery_status text, "
        "carrier text, shipped_at ts, estimated_delivery ts, promised_delivery ts, "
        "delivery_attempts int, failed_attempts int, unanswered_calls int, refusals int, "
        "delivered_at ts, signer_relation text, return_status text, return_kind text, "
        "return_deadline ts, flags_total int, flags_open int, flags_confirmed int, "
        "completed_at ts, retain_until ts, submitted_at ts, payment_deadline ts, contact json, "
        "last_position int, last_event_at ts"
    ),
    key=("stream_id",),
    unique=(("order_no",),),
    indexes=(
        ("account_no", "submitted_at"),
        ("status", "submitted_at"),
        ("seller_id", "submitted_at"),
    ),
    load_by="stream_id",
)

Row = dict[str, Any]
E = TypeVar("E")
# What an event on an existing order changes in its row, given the event's typed fields.
Change = Callable[[Row, E, Event], None]


def submitted(e: Event, b: Batch) -> None:
    d = e.fields(ev.OrderSubmitted)
    b.put(
        "orders",
        {
            "stream_id": e.stream,
            "order_no": d.order_no,
            "account_no": d.account_no,
            "seller_id": d.seller_id,
            "seller_kind": d.seller_kind,
            "purchase_type": d.purchase_type,
            "shipping_region": d.shipping_region,
            "status": OrderStatus.AWAITING_PAYMENT,
            "contract_formed": False,
            "total_due_fen": d.total_due_fen,
            "paid_fen": 0,
            "refunded_fen": 0,
            "pending_refund_fen": 0,
            "paid_by_method": {},
            "refunded_by_method": {},
            "gift_charged_fen": 0,
            "closed_ground": None,
            "closed_clause": None,
            "closed_at": None,
            "shortage_open": False,
            "price_error_open": False,
            "termination_requested": False,
            "delivery_status": DeliveryStatus.NOT_SHIPPED,
            "carrier": None,
            "shipped_at": None,
            "estimated_delivery": None,
            "promised_delivery": None,
            "delivery_attempts": 0,
            "failed_attempts": 0,
            "unanswered_calls": 0,
            "refusals": 0,
            "delivered_at": None,
            "signer_relation": None,
            "return_status": None,
            "return_kind": None,
            "return_deadline": None,
            "flags_total": 0,
            "flags_open": 0,
            "flags_confirmed": 0,
            "completed_at": None,
            "retain_until": None,
            "submitted_at": e.at,
            "payment_deadline": when(d.payment_deadline),
            "contact": d.contact,  # sealed tokens, never plaintext
            "last_position": e.position,
            "last_event_at": e.at,
        },
    )


def on_order(event_class: type[E], change: Change[E]) -> tuple[str, Handler]:
    """The handler for ``event_class`` on an existing order: apply ``change`` to the
    event's typed fields, stamp the position."""

    def handle(e: Event, b: Batch) -> None:
        row = b.edit("orders", e.stream)
        if row is None:
            return  # an order stream without its submission: nothing to show
        change(row, e.fields(event_class), e)
        row["last_position"] = e.position
        row["last_event_at"] = e.at

    return topic_of(event_class), handle


def nothing(row: Row, d: object, e: Event) -> None:
    """Events that change nothing shown here but still move the order's last position."""


def add_to(field: str, method_field: str) -> Change[ev.PaymentReceived | ev.RefundCompleted]:
    def change(row: Row, d: ev.PaymentReceived | ev.RefundCompleted, e: Event) -> None:
        by_method = dict(row[field])
        by_method[d.method] = by_method.get(d.method, 0) + d.amount_fen
        row[field] = by_method
        row[method_field] += d.amount_fen

    return change


payment_received = add_to("paid_by_method", "paid_fen")
_add_refunded = add_to("refunded_by_method", "refunded_fen")


def contract_formed(row: Row, d: object, e: Event) -> None:
    row["contract_formed"] = True
    row["status"] = OrderStatus.PAID


def closed(row: Row, d: ev.OrderClosed, e: Event) -> None:
    row["status"] = OrderStatus.CLOSED
    row["closed_ground"] = d.ground
    row["closed_clause"] = d.clause
    row["closed_at"] = e.at


def refund_initiated(row: Row, d: ev.RefundInitiated, e: Event) -> None:
    row["pending_refund_fen"] += d.amount_fen
    if d.purpose in LOWERS_DUE:  # an agreed lower price, short lines, a return
        row["total_due_fen"] -= d.amount_fen


def refund_completed(row: Row, d: ev.RefundCompleted, e: Event) -> None:
    row["pending_refund_fen"] -= d.amount_fen
    _add_refunded(row, d, e)


def price_error_resolved(row: Row, d: ev.PriceErrorResolved, e: Event) -> None:
    row["price_error_open"] = False
    if d.adjusted_total_fen is not None:
        row["total_due_fen"] = d.adjusted_total_fen


def shipped(row: Row, d: ev.Shipped, e: Event) -> None:
    row["status"] = OrderStatus.SHIPPED
    row["delivery_status"] = DeliveryStatus.IN_TRANSIT
    row["carrier"] = d.carrier
    row["shipped_at"] = e.at
    row["estimated_delivery"] = when(d.estimated_delivery)
    row["promised_delivery"] = when(d.promised_delivery)


def attempt_failed(row: Row, d: ev.DeliveryAttemptFailed, e: Event) -> None:
    row["delivery_status"] = DeliveryStatus.failed(d.reason)
    row["delivery_attempts"] += 1
    row["failed_attempts"] += 1


def call_attempted(row: Row, d: ev.ContactCallAttempted, e: Event) -> None:
    if not d.answered:
        row["unanswered_calls"] += 1


def refused(row: Row, d: object, e: Event) -> None:
    row["status"] = OrderStatus.DELIVERY_REFUSED
    row["delivery_status"] = DeliveryStatus.REFUSED
    row["delivery_attempts"] += 1
    row["refusals"] += 1


def delivered(row: Row, d: ev.Delivered, e: Event) -> None:
    row["status"] = OrderStatus.DELIVERED
    row["delivery_status"] = DeliveryStatus.DELIVERED
    row["delivery_attempts"] += 1
    row["delivered_at"] = e.at
    row["signer_relation"] = d.signer_relation
    row["return_deadline"] = when(d.return_deadline)


def return_requested(row: Row, d: ev.ReturnRequested, e: Event) -> None:
    row["status"] = OrderStatus.RETURN_REQUESTED
    row["return_status"] = ReturnStatus.REQUESTED
    row["return_kind"] = d.kind


def return_inspected(row: Row, d: object, e: Event) -> None:
    row["status"] = OrderStatus.RETURNED
    row["return_status"] = ReturnStatus.INSPECTED


def flag_reviewed(row: Row, d: ev.AbnormalOrderFlagReviewed, e: Event) -> None:
    row["flags_open"] -= 1
    if d.outcome == "confirmed":
        row["flags_confirmed"] += 1


def flag_raised(row: Row, d: object, e: Event) -> None:
    row["flags_total"] += 1
    row["flags_open"] += 1


def completed(row: Row, d: ev.TransactionCompleted, e: Event) -> None:
    row["completed_at"] = when(d.completed_at)
    row["retain_until"] = when(d.retain_until)


def reopened(row: Row, d: ev.TransactionReopened, e: Event) -> None:
    """An after-sales case after completion: open again, kept at least until the new date."""
    row["completed_at"] = None
    row["retain_until"] = when(d.retain_until)


def setter(field: str, value: Any) -> Change[object]:
    def change(row: Row, d: object, e: Event) -> None:
        row[field] = value

    return change


def gift_charged(row: Row, d: ev.GiftPriceCharged, e: Event) -> None:
    row["gift_charged_fen"] += d.price_fen


CHANGES: dict[str, Handler] = dict(
    [
        on_order(ev.PaymentReceived, payment_received),
        on_order(ev.ContractFormed, contract_formed),
        on_order(ev.CancelledByUser, nothing),
        on_order(ev.PaymentDeadlineLapsed, nothing),
        on_order(ev.StockShortageDeclared, setter("shortage_open", True)),
        on_order(ev.StockShortageResolved, setter("shortage_open", False)),
        on_order(ev.MutualTerminationRequested, setter("termination_requested", True)),
        on_order(ev.MutualTerminationAccepted, setter("termination_requested", False)),
        on_order(ev.MutualTerminationDeclined, setter("termination_requested", False)),
        on_order(ev.OrderClosed, closed),
        on_order(ev.UserNotified, nothing),
        on_order(ev.RefundConsentRecorded, nothing),
        on_order(ev.RefundInitiated, refund_initiated),
        on_order(ev.RefundCompleted, refund_completed),
        on_order(ev.PriceErrorDetected, setter("price_error_open", True)),
        on_order(ev.PriceErrorResolved, price_error_resolved),
        on_order(ev.Shipped, shipped),
        on_order(ev.DeliveryAttemptFailed, attempt_failed),
        on_order(ev.ContactCallAttempted, call_attempted),
        on_order(ev.DeliveryRefused, refused),
        on_order(ev.Delivered, delivered),
        on_order(ev.ReturnRequested, return_requested),
        on_order(ev.ReturnReceived, setter("return_status", ReturnStatus.RECEIVED)),
        on_order(ev.ReturnInspected, return_inspected),
        on_order(ev.GiftPriceCharged, gift_charged),
        on_order(ev.AbnormalOrderFlagRaised, flag_raised),
        on_order(ev.AbnormalOrderFlagReviewed, flag_reviewed),
        on_order(ev.TransactionCompleted, completed),
        on_order(ev.TransactionReopened, reopened),
    ]
)


def blank_contact(orders: Callable[[Event], list[str]]) -> Handler:
    """A subject erased, or its direct identifiers removed, on ``orders``: each order's
    contact reads ``[erased]`` per field (the sealed tokens go from the view too)."""

    def handle(e: Event, b: Batch) -> None:
        for order_no in orders(e):
            row = b.edit("orders", str(order_id(order_no)))
            if row is not None:
                row["contact"] = dict.fromkeys(row["contact"] or {}, ERASED)

    return handle


HANDLERS: dict[str, Handler] = {
    topic_of(ev.OrderSubmitted): submitted,
    **CHANGES,
    topic_of(ds.SubjectErased): blank_contact(lambda e: e.fields(ds.SubjectErased).order_nos),
    topic_of(ds.DirectIdentifiersRemoved): blank_contact(
        lambda e: e.fields(ds.DirectIdentifiersRemoved).order_nos
    ),
}

PROJECTION = Projection(
    name="orders",
    # 2: an after-sales case after completion reopens it (TransactionReopened)
    # 3: an erased or de-identified order's contact reads [erased] (SubjectErased,
    # DirectIdentifiersRemoved)
    version=3,
    rebuild_cost=13,
    description="current state of every order",
    tables=(ORDERS,),
    handlers=HANDLERS,
)
