"""Retention audit trail (DOMAIN.md §7; ECL 31, PIPL 19/47).

Per order: when the transaction completed and ``retain_until`` (completion + 3 years). Per data
subject: every personal-data step as its event arrives. Today the log has two such steps: the
retention scheduled when a transaction completes, and a recorded read of the subject's
personal data (``accessed``: an auditor's or regulator's, ledger/domain/personal_data.py);
the workflow that emits the others (exported, de-identified, erased, held, released) comes
later. Adding one is one entry in ``STEPS``::

    STEPS[SubjectErased.TOPIC] = Step("erased", subject_field="subject_id")

An order-stream event names its subject through the order (the account whose key seals its
personal fields); an event of its own stream names it in ``subject_field``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.utils import resolve_topic

from ledger.domain.order import events as ev
from ledger.domain.personal_data import PersonalDataRead
from projections.base import Handler, Projection, topic_of
from projections.batch import Batch
from projections.events import Event, when
from projections.schema import Table, columns

RETENTION_ORDERS = Table(
    name="retention_orders",
    columns=columns(
        "stream_id text, order_no text, subject_id text, submitted_at ts, closed_at ts, "
        "delivered_at ts, completed_at ts, retain_until ts, last_position int"
    ),
    key=("stream_id",),
    unique=(("order_no",),),
    indexes=(("retain_until",), ("subject_id",)),
    load_by="stream_id",
)
STEPS_TABLE = Table(
    name="retention_steps",
    columns=columns(
        "position int, subject_id text, step text, order_no text, topic text, at ts, detail json"
    ),
    key=("position",),
    indexes=(("subject_id", "position"), ("step", "at")),
)

Detail = Callable[[Event], dict[str, Any]]


def _no_detail(e: Event) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Step:
    """How an event becomes a step of the audit trail."""

    step: str
    subject_field: str | None = None  # None: the subject of the order the event is about
    detail: Detail = field(default=_no_detail)


def _scheduled(e: Event) -> dict[str, Any]:
    d = e.fields(ev.TransactionCompleted)
    completed, until = when(d.completed_at), when(d.retain_until)
    assert completed is not None and until is not None
    return {"completed_at": completed.isoformat(), "retain_until": until.isoformat()}


def _accessed(e: Event) -> dict[str, Any]:
    """Who read which fields (never the values: the event has none)."""
    d = e.fields(PersonalDataRead)
    return {"key_id": d.actor.get("key_id"), "role": d.actor.get("role"), "fields": d.fields}


STEPS: dict[str, Step] = {
    topic_of(ev.TransactionCompleted): Step("scheduled", detail=_scheduled),
    topic_of(PersonalDataRead): Step("accessed", subject_field="subject_id", detail=_accessed),
}


def record_step(e: Event, b: Batch) -> None:
    spec = STEPS[e.topic]
    order_no = None
    if spec.subject_field is None:
        order = b.get("retention_orders", e.stream)
        if order is None:
            return
        subject, order_no = order["subject_id"], order["order_no"]
    else:
        fields = e.fields(resolve_topic(e.topic))
        subject = getattr(fields, spec.subject_field)
        order_no = getattr(fields, "order_no", None)
    b.add(
        "retention_steps",
        {
            "position": e.position,
            "subject_id": subject,
            "step": spec.step,
            "order_no": order_no,
            "topic": e.topic,
            "at": e.at,
            "detail": spec.detail(e),
        },
    )


def submitted(e: Event, b: Batch) -> None:
    d = e.fields(ev.OrderSubmitted)
    b.put(
        "retention_orders",
        {
            "stream_id": e.stream,
            "order_no": d.order_no,
            "subject_id": d.account_no,
            "submitted_at": e.at,
            "closed_at": None,
            "delivered_at": None,
            "completed_at": None,
            "retain_until": None,
            "last_position": e.position,
        },
    )


def _stamp(column: str) -> Handler:
    def handle(e: Event, b: Batch) -> None:
        row = b.edit("retention_orders", e.stream)
        if row is not None:
            row[column] = e.at
            row["last_position"] = e.position

    return handle


def completed(e: Event, b: Batch) -> None:
    row = b.edit("retention_orders", e.stream)
    if row is not None:
        d = e.fields(ev.TransactionCompleted)
        row["completed_at"] = when(d.completed_at)
        row["retain_until"] = when(d.retain_until)
        row["last_position"] = e.position
    record_step(e, b)


HANDLERS: dict[str, Handler] = {
    **{topic: record_step for topic in STEPS},
    topic_of(ev.OrderSubmitted): submitted,
    topic_of(ev.OrderClosed): _stamp("closed_at"),
    topic_of(ev.Delivered): _stamp("delivered_at"),
    topic_of(ev.TransactionCompleted): completed,
}

PROJECTION = Projection(
    name="retention",
    version=2,  # 2: reads of personal data are ``accessed`` steps
    rebuild_cost=7,
    description="retention deadlines and the personal-data audit trail (§7)",
    tables=(RETENTION_ORDERS, STEPS_TABLE),
    handlers=HANDLERS,
)
