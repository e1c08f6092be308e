"""What a data subject's access copy shows, in readable form (PIPL 45; ledger/access_copy.py).

Each order is read from its own events: the order as it stands (status, amounts, dates), its
items, payments, refund consents, refunds, delivery steps and return steps, and its whole
history, every sealed field unsealed under the subject's key. Amounts are shown in fen and in
yuan (text, two decimals: never a float), times in China time (RFC 3339 with ``+08:00``).

Every sealed value met is also collected, by field, for the subject's own page
(``subject.json``): names, phones, addresses, IPs, payer accounts, refund destinations, and
whatever else the events seal for the subject. A value sealed for another subject is shown as
``[another subject's data]``, never unsealed. Linkage digests (keyed hashes) are left out:
they are not readable data, only a means to compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.domain.china_time import CHINA
from ledger.domain.data_subject import ACCESS_LAW, RESTRICTION_LAW, RETENTION_LAW, DataSubject
from ledger.domain.order import events as ev
from ledger.sealing import ERASED, Sealer, is_token, sealed_as

OTHER_SUBJECT = "[another subject's data]"
# Event attributes whose sealed value was sealed under another field name.
# Attributes of an event that are the library's or internal, not the order's facts.
INTERNAL = frozenset(
    {
        "originator_id",
        "originator_version",
        "originator_topic",
        "timestamp",
        "command_id",
        "linkage",
        "limit_counters",
    }
)
DELIVERY_STEPS: dict[type[Any], str] = {
    ev.Shipped: "shipped",
    ev.DeliveryAttemptFailed: "attempt_failed",
    ev.ContactCallAttempted: "call_attempted",
    ev.DeliveryRefused: "refused",
    ev.Delivered: "delivered",
}
RETURN_STEPS: dict[type[Any], str] = {
    ev.ReturnRequested: "requested",
    ev.ReturnReceived: "received",
    ev.ReturnInspected: "inspected",
    ev.GiftPriceCharged: "gift_charged",
}


def yuan(fen: int) -> str:
    """Fen as yuan text with two decimals (``399900`` → ``"3999.00"``), exact."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def money(name: str, fen: int) -> dict[str, Any]:
    """``{name_fen: fen, name_yuan: "…"}``."""
    return {f"{name}_fen": fen, f"{name}_yuan": yuan(fen)}


def china(moment: datetime | None) -> str | None:
    """A time as RFC 3339 in China time (``2026-03-02T09:00:00+08:00``)."""
    return None if moment is None else moment.astimezone(CHINA).isoformat()


@dataclass
class SubjectData:
    """Unseals the subject's tokens and collects each value by field (for subject.json):
    field -> value -> the order numbers it appears in."""

    subject_id: str
    sealer: Sealer
    erased: bool
    found: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def reveal(self, token: str, name: str, order_no: str) -> str:
        """The plaintext of ``token`` sealed as field ``name`` (``[erased]`` once the key is
        destroyed), collected; a token of another subject is not opened."""
        if self.sealer.subject_of(token) != self.subject_id:
            return OTHER_SUBJECT
        value = ERASED if self.erased else self.sealer.unseal(token, name, stream=order_no)
        orders = self.found.setdefault(name, {}).setdefault(value, [])
        if order_no not in orders:
            orders.append(order_no)
        return value

    def readable(self, value: Any, name: str, order_no: str) -> Any:
        """``value`` (an event's attribute ``name``) with tokens unsealed and times in China
        time, recursively."""
        if isinstance(value, str) and is_token(value):
            return self.reveal(value, sealed_as(name), order_no)
        if isinstance(value, datetime):
            return china(value)
        if isinstance(value, Mapping):
            return with_yuan({k: self.readable(v, str(k), order_no) for k, v in value.items()})
        if isinstance(value, list | tuple):
            return [self.readable(v, name, order_no) for v in value]
        return value


def with_yuan(facts: dict[str, Any]) -> dict[str, Any]:
    """``facts`` with ``x_yuan`` beside each whole ``x_fen`` amount."""
    shown: dict[str, Any] = {}
    for name, value in facts.items():
        shown[name] = value
        if name.endswith("_fen") and isinstance(value, int) and not isinstance(value, bool):
            shown[name.removesuffix("_fen") + "_yuan"] = yuan(value)
    return shown


def event_fields(event: Any, data: SubjectData, order_no: str) -> dict[str, Any]:
    """An event's own facts, readable (no library or internal attributes)."""
    return with_yuan(
        {
            name: data.readable(value, name, order_no)
            for name, value in vars(event).items()
            if name not in INTERNAL and not name.startswith("_")
        }
    )


def _topic(event: Any) -> str:
    return str(type(event).TOPIC).removeprefix("mall-ledger/")


def order_view(events: list[Any], data: SubjectData) -> dict[str, Any]:
    """One order, readable, from its events (the first is its submission)."""
    order: Any = None
    for event in events:
        order = event.mutate(order)
    submitted = events[0]
    order_no = order.order_no
    view: dict[str, Any] = {
        "order_no": order_no,
        "status": order.status,
        "submitted_at": china(submitted.timestamp),
        "seller_id": submitted.seller_id,
        "seller_kind": submitted.seller_kind,
        "purchase_type": submitted.purchase_type,
        "shipping_region": submitted.shipping_region,
        "payment_deadline": china(order.payment_deadline),
        "contract_formed": order.contract_formed,
        **money("total_due", order.total_due_fen),
        **money("paid", order.paid_total_fen),
        **money("refunded", sum(order.refunded_fen.values())),
        **money("refund_pending", sum(r["amount_fen"] for r in order.pending_refunds.values())),
        "closed_at": china(order.closed_at),
        "closed_ground": order.closed_ground,
        "closed_clause": order.closed_clause,
        "delivered_at": china(order.delivered_at),
        "return_deadline": china(order.return_deadline),
        "completed_at": china(order.completed_at),
        "retain_until": china(order.retain_until),
        "contact": data.readable(order.contact, "contact", order_no),
        "items": [_item(line) for line in order.lines],
        "gifts": [{**gift, **money("price", gift["price_fen"])} for gift in order.gifts],
        "promotions": list(submitted.promotions),
        "coupons": list(order.coupons),
        "f_codes": list(order.f_codes),
    }
    view.update(_money_steps(events, data, order_no))
    view["deliveries"] = _steps(events, DELIVERY_STEPS, data, order_no)
    view["returns"] = _steps(events, RETURN_STEPS, data, order_no)
    view["history"] = [
        {"event": _topic(e), "at": china(e.timestamp), **event_fields(e, data, order_no)}
        for e in events
    ]
    return view


def _item(line: Mapping[str, Any]) -> dict[str, Any]:
    total = line["quantity"] * line["unit_price_fen"] - line.get("discount_fen", 0)
    return {
        "sku": line["sku"],
        "quantity": line["quantity"],
        **money("unit_price", line["unit_price_fen"]),
        **money("discount", line.get("discount_fen", 0)),
        **money("amount", total),
        "no_reason_exclusion": line.get("no_reason_exclusion"),
    }


def _money_steps(events: list[Any], data: SubjectData, order_no: str) -> dict[str, Any]:
    """Payments, refund consents and refunds (each refund with its completion)."""
    payments, consents, refunds = [], [], {}
    for e in events:
        if isinstance(e, ev.PaymentReceived):
            payments.append(
                {
                    "payment_id": e.payment_id,
                    "method": e.method,
                    "payer_account": data.readable(e.payer_account, "payer_account", order_no),
                    **money("amount", e.amount_fen),
                    "at": china(e.timestamp),
                }
            )
        elif isinstance(e, ev.RefundConsentRecorded):
            destination = data.readable(e.destination_account, "destination_account", order_no)
            consents.append(
                {
                    "consent_id": e.consent_id,
                    "method": e.method,
                    "destination_account": destination,
                    "at": china(e.timestamp),
                }
            )
        elif isinstance(e, ev.RefundInitiated):
            refunds[e.refund_id] = _refund(e)
        elif isinstance(e, ev.RefundCompleted) and e.refund_id in refunds:
            refunds[e.refund_id].update(status="completed", completed_at=china(e.timestamp))
    by_consent = {c["consent_id"]: c["destination_account"] for c in consents}
    for refund in refunds.values():
        refund["destination_account"] = by_consent.get(refund["consent_id"])
    return {"payments": payments, "refund_consents": consents, "refunds": list(refunds.values())}


def _refund(e: Any) -> dict[str, Any]:
    return {
        "refund_id": e.refund_id,
        "method": e.method,
        **money("amount", e.amount_fen),
        "purpose": e.purpose,
        "destination": e.destination,
        "consent_id": e.consent_id,
        "status": "pending",
        "initiated_at": china(e.timestamp),
        "due_by": china(e.due_by),
        "completed_at": None,
    }


def _steps(
    events: list[Any], kinds: dict[type[Any], str], data: SubjectData, order_no: str
) -> list[dict[str, Any]]:
    return [
        {"step": kinds[type(e)], "at": china(e.timestamp), **event_fields(e, data, order_no)}
        for e in events
        if type(e) in kinds
    ]


def subject_view(
    data: SubjectData, subject: DataSubject | None, account: Any | None, made_at: datetime
) -> dict[str, Any]:
    """subject.json: the subject's personal data by field, its retention dates, legal holds,
    restriction of processing and account standing. Call after every order was read."""
    restriction = None if subject is None else subject.restriction
    return {
        "subject_id": data.subject_id,
        "law": ACCESS_LAW,
        "erased": data.erased,
        "personal_data": {
            name: [{"value": value, "orders": orders} for value, orders in values.items()]
            for name, values in sorted(data.found.items())
        },
        "retention": _retention(subject),
        "retained_until": china(None if subject is None else subject.retained_until),
        "legal_holds": _holds(subject),
        "restriction": None if restriction is None else _restriction(restriction, made_at),
        "account": None
        if account is None
        else {"restricted_ground": account.restricted_ground, "terminated": account.terminated},
    }


def _retention(subject: DataSubject | None) -> list[dict[str, Any]]:
    if subject is None:
        return []
    return [
        {
            "order_no": order_no,
            "law": RETENTION_LAW,
            "completed_at": china(entry["completed_at"]),
            "retain_until": china(entry["retain_until"]),
            "open_case": entry["open_case"],
        }
        for order_no, entry in sorted(subject.retention.items())
    ]


def _holds(subject: DataSubject | None) -> list[dict[str, Any]]:
    if subject is None:
        return []
    return [
        {"reference": reference, "reason": hold["reason"], "placed_at": china(hold["placed_at"])}
        for reference, hold in sorted(subject.holds.items())
    ]


def _restriction(restriction: Mapping[str, Any], made_at: datetime) -> dict[str, Any]:
    return {
        "law": RESTRICTION_LAW,
        "basis": restriction["basis"],
        "since": china(restriction["since"]),
        "until": china(restriction["until"]),
        "in_force": restriction["until"] > made_at,
    }
