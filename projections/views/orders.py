"""Order state: one row per order, as the Order aggregate would answer, plus its last position.

Queries: by order number; by account; by status and submission time; by seller. The contact
details stay sealed tokens (unsealed at read time by a role allowed to, DOMAIN.md §7).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.domain.order import events as ev
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

Change = Callable[[dict[str, Any], dict[str, Any], Event], None]


def submitted(e: Event, b: Batch) -> None:
    d = e.data
    b.put(
        "orders",
        {
            "stream_id": e.stream,
            "order_no": d["order_no"],
            "account_no": d["account_no"],
            "seller_id": d["seller_id"],
            "seller_kind": d["seller_kind"],
            "purchase_type": d["purchase_type"],
            "shipping_region": d["shipping_region"],
            "status": "awaiting_payment",
            "contract_formed": False,
            "total_due_fen": d["total_due_fen"],
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
            "delivery_status": "not_shipped",
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
            "payment_deadline": when(d["payment_deadline"]),
            "contact": d["contact"],  # sealed tokens, never plaintext
            "last_position": e.position,
            "last_event_at": e.at,
        },
    )


def on_order(change: Change) -> Handler:
    """A handler for an event on an existing order: apply ``change``, stamp the position."""

    def handle(e: Event, b: Batch) -> None:
        row = b.edit("orders", e.stream)
        if row is None:
            return  # an order stream without its submission: nothing to show
        change(row, e.data, e)
        row["last_position"] = e.position
        row["last_event_at"] = e.at

    return handle


def nothing(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    """Events that change nothing shown here but still move the order's last position."""


def add_to(field: str, method_field: str) -> Change:
    def change(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
        by_method = dict(row[field])
        by_method[d["method"]] = by_method.get(d["method"], 0) + d["amount_fen"]
        row[field] = by_method
        row[method_field] += d["amount_fen"]

    return change


payment_received = add_to("paid_by_method", "paid_fen")
_add_refunded = add_to("refunded_by_method", "refunded_fen")


def contract_formed(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["contract_formed"] = True
    row["status"] = "paid"


def closed(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["status"] = "closed"
    row["closed_ground"] = d["ground"]
    row["closed_clause"] = d["clause"]
    row["closed_at"] = e.at


def refund_initiated(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["pending_refund_fen"] += d["amount_fen"]
    if d["purpose"] in ev.LOWERS_DUE:  # an agreed lower price, short lines, a return
        row["total_due_fen"] -= d["amount_fen"]


def refund_completed(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["pending_refund_fen"] -= d["amount_fen"]
    _add_refunded(row, d, e)


def price_error_resolved(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["price_error_open"] = False
    if d["adjusted_total_fen"] is not None:
        row["total_due_fen"] = d["adjusted_total_fen"]


def shipped(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["status"] = "shipped"
    row["delivery_status"] = "in_transit"
    row["carrier"] = d["carrier"]
    row["shipped_at"] = e.at
    row["estimated_delivery"] = when(d["estimated_delivery"])
    row["promised_delivery"] = when(d["promised_delivery"])


def attempt_failed(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["delivery_status"] = f"failed:{d['reason']}"
    row["delivery_attempts"] += 1
    row["failed_attempts"] += 1


def call_attempted(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    if not d["answered"]:
        row["unanswered_calls"] += 1


def refused(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["status"] = "delivery_refused"
    row["delivery_status"] = "refused"
    row["delivery_attempts"] += 1
    row["refusals"] += 1


def delivered(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["status"] = "delivered"
    row["delivery_status"] = "delivered"
    row["delivery_attempts"] += 1
    row["delivered_at"] = e.at
    row["signer_relation"] = d["signer_relation"]
    row["return_deadline"] = when(d["return_deadline"])


def return_requested(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["status"] = "return_requested"
    row["return_status"] = "requested"
    row["return_kind"] = d["kind"]


def return_inspected(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["status"] = "returned"
    row["return_status"] = "inspected"


def flag_reviewed(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["flags_open"] -= 1
    if d["outcome"] == "confirmed":
        row["flags_confirmed"] += 1


def flag_raised(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["flags_total"] += 1
    row["flags_open"] += 1


def completed(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["completed_at"] = when(d["completed_at"])
    row["retain_until"] = when(d["retain_until"])


def setter(field: str, value: Any) -> Change:
    def change(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
        row[field] = value

    return change


def gift_charged(row: dict[str, Any], d: dict[str, Any], e: Event) -> None:
    row["gift_charged_fen"] += d["price_fen"]


CHANGES: dict[str, Change] = {
    topic_of(ev.PaymentReceived): payment_received,
    topic_of(ev.ContractFormed): contract_formed,
    topic_of(ev.CancelledByUser): nothing,
    topic_of(ev.PaymentDeadlineLapsed): nothing,
    topic_of(ev.StockShortageDeclared): setter("shortage_open", True),
    topic_of(ev.StockShortageResolved): setter("shortage_open", False),
    topic_of(ev.MutualTerminationRequested): setter("termination_requested", True),
    topic_of(ev.MutualTerminationAccepted): setter("termination_requested", False),
    topic_of(ev.MutualTerminationDeclined): setter("termination_requested", False),
    topic_of(ev.OrderClosed): closed,
    topic_of(ev.UserNotified): nothing,
    topic_of(ev.RefundConsentRecorded): nothing,
    topic_of(ev.RefundInitiated): refund_initiated,
    topic_of(ev.RefundCompleted): refund_completed,
    topic_of(ev.PriceErrorDetected): setter("price_error_open", True),
    topic_of(ev.PriceErrorResolved): price_error_resolved,
    topic_of(ev.Shipped): shipped,
    topic_of(ev.DeliveryAttemptFailed): attempt_failed,
    topic_of(ev.ContactCallAttempted): call_attempted,
    topic_of(ev.DeliveryRefused): refused,
    topic_of(ev.Delivered): delivered,
    topic_of(ev.ReturnRequested): return_requested,
    topic_of(ev.ReturnReceived): setter("return_status", "received"),
    topic_of(ev.ReturnInspected): return_inspected,
    topic_of(ev.GiftPriceCharged): gift_charged,
    topic_of(ev.AbnormalOrderFlagRaised): flag_raised,
    topic_of(ev.AbnormalOrderFlagReviewed): flag_reviewed,
    topic_of(ev.TransactionCompleted): completed,
}

HANDLERS: dict[str, Handler] = {
    topic_of(ev.OrderSubmitted): submitted,
    **{topic: on_order(change) for topic, change in CHANGES.items()},
}

PROJECTION = Projection(
    name="orders",
    version=1,
    rebuild_cost=13,
    description="current state of every order",
    tables=(ORDERS,),
    handlers=HANDLERS,
)
