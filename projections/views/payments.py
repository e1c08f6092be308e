"""Payments and refunds per order and payment method (3.1.4, 7D art. 14).

``payments`` has one row per order and method: paid, refunded and under way; outstanding is
paid minus refunded. ``ReadModels.reconciliation`` lists every row where refunds (done or
under way) exceed payments: the domain never lets that happen, so it must stay empty.
Payer and consented refund accounts stay sealed tokens.
"""

from __future__ import annotations

from ledger.domain.order import events as ev
from ledger.domain.order.vocabulary import LOWERS_DUE, RefundStatus
from projections.base import Handler, Projection, topic_of
from projections.batch import Batch
from projections.db import Row
from projections.events import Event, when
from projections.schema import Table, columns

PAY_ORDERS = Table(
    name="pay_orders",
    columns=columns("stream_id text, order_no text, account_no text, total_due_fen int"),
    key=("stream_id",),
    unique=(("order_no",),),
    load_by="stream_id",
)
PAYMENTS = Table(
    name="payments",
    columns=columns(
        "stream_id text, method text, order_no text, paid_fen int, refunded_fen int, "
        "pending_fen int, receipts int, refunds int, last_position int"
    ),
    key=("stream_id", "method"),
    indexes=(("order_no",),),
    load_by="stream_id",
)
RECEIPTS = Table(
    name="payment_receipts",
    columns=columns(
        "position int, stream_id text, order_no text, payment_id text, method text, "
        "amount_fen int, payer_account text, at ts"
    ),
    key=("position",),
    indexes=(("order_no",),),
)
REFUNDS = Table(
    name="refunds",
    columns=columns(
        "stream_id text, refund_id text, order_no text, method text, amount_fen int, "
        "destination text, consent_id text, due_by ts, status text, initiated_at ts, "
        "completed_at ts, last_position int"
    ),
    key=("stream_id", "refund_id"),
    indexes=(("order_no",), ("status", "due_by")),
    load_by="stream_id",
)
CONSENTS = Table(
    name="refund_consents",
    columns=columns(
        "position int, stream_id text, order_no text, consent_id text, method text, "
        "destination_account text, at ts"
    ),
    key=("position",),
    indexes=(("order_no",),),
)


def submitted(e: Event, b: Batch) -> None:
    d = e.fields(ev.OrderSubmitted)
    b.put(
        "pay_orders",
        {
            "stream_id": e.stream,
            "order_no": d.order_no,
            "account_no": d.account_no,
            "total_due_fen": d.total_due_fen,
        },
    )


def _method_row(e: Event, b: Batch, order_no: str, method: str) -> Row:
    row = b.edit("payments", (e.stream, method))
    if row is None:
        row = {
            "stream_id": e.stream,
            "method": method,
            "order_no": order_no,
            "paid_fen": 0,
            "refunded_fen": 0,
            "pending_fen": 0,
            "receipts": 0,
            "refunds": 0,
            "last_position": e.position,
        }
        b.put("payments", row)
    row["last_position"] = e.position
    return row


def payment_received(e: Event, b: Batch) -> None:
    order = b.get("pay_orders", e.stream)
    if order is None:
        return
    d = e.fields(ev.PaymentReceived)
    row = _method_row(e, b, order["order_no"], d.method)
    row["paid_fen"] += d.amount_fen
    row["receipts"] += 1
    b.add(
        "payment_receipts",
        {
            "position": e.position,
            "stream_id": e.stream,
            "order_no": order["order_no"],
            "payment_id": d.payment_id,
            "method": d.method,
            "amount_fen": d.amount_fen,
            "payer_account": d.payer_account,  # sealed token
            "at": e.at,
        },
    )


def refund_initiated(e: Event, b: Batch) -> None:
    order = b.get("pay_orders", e.stream)
    if order is None:
        return
    d = e.fields(ev.RefundInitiated)
    row = _method_row(e, b, order["order_no"], d.method)
    row["pending_fen"] += d.amount_fen
    row["refunds"] += 1
    lowered = b.edit("pay_orders", e.stream) if d.purpose in LOWERS_DUE else None
    if lowered is not None:  # an agreed lower price, short lines, a return
        lowered["total_due_fen"] -= d.amount_fen
    b.put(
        "refunds",
        {
            "stream_id": e.stream,
            "refund_id": d.refund_id,
            "order_no": order["order_no"],
            "method": d.method,
            "amount_fen": d.amount_fen,
            "destination": d.destination,
            "consent_id": d.consent_id,
            "due_by": when(d.due_by),
            "status": RefundStatus.INITIATED,
            "initiated_at": e.at,
            "completed_at": None,
            "last_position": e.position,
        },
    )


def refund_completed(e: Event, b: Batch) -> None:
    order = b.get("pay_orders", e.stream)
    if order is None:
        return
    d = e.fields(ev.RefundCompleted)
    row = _method_row(e, b, order["order_no"], d.method)
    row["pending_fen"] -= d.amount_fen
    row["refunded_fen"] += d.amount_fen
    refund = b.edit("refunds", (e.stream, d.refund_id))
    if refund is not None:
        refund.update(status=RefundStatus.COMPLETED, completed_at=e.at, last_position=e.position)


def consent_recorded(e: Event, b: Batch) -> None:
    order = b.get("pay_orders", e.stream)
    if order is None:
        return
    d = e.fields(ev.RefundConsentRecorded)
    b.add(
        "refund_consents",
        {
            "position": e.position,
            "stream_id": e.stream,
            "order_no": order["order_no"],
            "consent_id": d.consent_id,
            "method": d.method,
            "destination_account": d.destination_account,  # sealed token
            "at": e.at,
        },
    )


def price_error_resolved(e: Event, b: Batch) -> None:
    adjusted = e.fields(ev.PriceErrorResolved).adjusted_total_fen
    order = b.edit("pay_orders", e.stream)
    if order is not None and adjusted is not None:
        order["total_due_fen"] = adjusted


HANDLERS: dict[str, Handler] = {
    topic_of(ev.OrderSubmitted): submitted,
    topic_of(ev.PaymentReceived): payment_received,
    topic_of(ev.RefundInitiated): refund_initiated,
    topic_of(ev.RefundCompleted): refund_completed,
    topic_of(ev.RefundConsentRecorded): consent_recorded,
    topic_of(ev.PriceErrorResolved): price_error_resolved,
}

PROJECTION = Projection(
    name="payments",
    version=1,
    rebuild_cost=9,
    description="payments and refunds per order and method (3.1.4)",
    tables=(PAY_ORDERS, PAYMENTS, RECEIPTS, REFUNDS, CONSENTS),
    handlers=HANDLERS,
)
