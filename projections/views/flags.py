"""Abnormal-order flags (3.1.6) and refusal history (3.2.3, 6.1(5)).

Each flag keeps its criterion, its evidence (orders, signals), whether it was raised by
automation and the human review (PIPL 24). Every refusal of delivery is kept with whether it
was for a quality reason, so the non-quality refusals of an account in a rolling window are
one indexed count (``ReadModels.refusals_in_window``).
"""

from __future__ import annotations

from ledger.domain import data_subject as ds
from ledger.domain.ids import order_id
from ledger.domain.order import events as ev
from ledger.domain.order.abnormal import CRITERIA
from ledger.sealing import ERASED
from projections.base import Handler, Projection, topic_of
from projections.batch import Batch
from projections.events import Event
from projections.schema import Table, columns

FLAG_ORDERS = Table(
    name="flag_orders",
    columns=columns("stream_id text, order_no text, account_no text"),
    key=("stream_id",),
    load_by="stream_id",
)
FLAGS = Table(
    name="flags",
    columns=columns(
        "stream_id text, flag_id text, order_no text, account_no text, criterion int, "
        "criterion_text text, evidence_orders json, evidence_signals json, evidence json, "
        "automated bool, raised_at ts, raised_position int, outcome text, reviewer_id text, "
        "review_note text, reviewed_at ts, last_position int"
    ),
    key=("stream_id", "flag_id"),
    indexes=(("order_no",), ("account_no", "raised_at"), ("outcome", "raised_at")),
    load_by="stream_id",
)
REFUSALS = Table(
    name="refusals",
    columns=columns(
        "position int, stream_id text, order_no text, account_no text, quality_reason bool, "
        "reason text, at ts"
    ),
    key=("stream_id", "position"),
    indexes=(("account_no", "quality_reason", "at"),),
    load_by="stream_id",  # an erasure blanks its orders' reasons
)


def submitted(e: Event, b: Batch) -> None:
    d = e.fields(ev.OrderSubmitted)
    b.put(
        "flag_orders",
        {"stream_id": e.stream, "order_no": d.order_no, "account_no": d.account_no},
    )


def flag_raised(e: Event, b: Batch) -> None:
    order = b.get("flag_orders", e.stream)
    if order is None:
        return
    d = e.fields(ev.AbnormalOrderFlagRaised)
    evidence = d.evidence
    b.put(
        "flags",
        {
            "stream_id": e.stream,
            "flag_id": d.flag_id,
            "order_no": order["order_no"],
            "account_no": order["account_no"],
            "criterion": d.criterion,
            "criterion_text": CRITERIA.get(d.criterion, ""),
            "evidence_orders": list(evidence.get("orders", [])),
            "evidence_signals": list(evidence.get("signals", [])),
            "evidence": evidence,
            "automated": d.automated,
            "raised_at": e.at,
            "raised_position": e.position,
            "outcome": None,
            "reviewer_id": None,
            "review_note": None,
            "reviewed_at": None,
            "last_position": e.position,
        },
    )


def flag_reviewed(e: Event, b: Batch) -> None:
    d = e.fields(ev.AbnormalOrderFlagReviewed)
    row = b.edit("flags", (e.stream, d.flag_id))
    if row is None:
        return
    row.update(
        outcome=d.outcome,
        reviewer_id=d.reviewer_id,
        review_note=d.note,
        reviewed_at=e.at,
        last_position=e.position,
    )


def refused(e: Event, b: Batch) -> None:
    order = b.get("flag_orders", e.stream)
    if order is None:
        return
    d = e.fields(ev.DeliveryRefused)
    b.put(
        "refusals",
        {
            "position": e.position,
            "stream_id": e.stream,
            "order_no": order["order_no"],
            "account_no": order["account_no"],
            "quality_reason": d.quality_reason,
            "reason": d.reason,
            "at": e.at,
        },
    )


def subject_erased(e: Event, b: Batch) -> None:
    """The subject's personal data erased (PIPL 47): on each of its orders' flags, the
    linkage hashes (signals) and the reviewer's free-text note go; criterion, outcome and
    the orders linked stay (the record of the decision, PIPL 24). Each refusal of delivery
    keeps whether it was for a quality reason (6.1(5) counts those) and loses the reason the
    person gave."""
    for order_no in e.fields(ds.SubjectErased).order_nos:
        stream = str(order_id(order_no))
        b.prefetch("refusals", [stream])
        for row in [r for r in b.rows("refusals") if r["stream_id"] == stream]:
            refusal = b.edit("refusals", (stream, row["position"]))
            assert refusal is not None
            if refusal["reason"]:
                refusal["reason"] = ERASED
        b.prefetch("flags", [stream])
        for row in [r for r in b.rows("flags") if r["stream_id"] == stream]:
            flag = b.edit("flags", (stream, row["flag_id"]))
            assert flag is not None
            flag["evidence_signals"] = []
            flag["evidence"] = {**(flag["evidence"] or {}), "signals": []}
            if flag["review_note"] is not None:
                flag["review_note"] = ERASED


HANDLERS: dict[str, Handler] = {
    topic_of(ds.SubjectErased): subject_erased,
    topic_of(ev.OrderSubmitted): submitted,
    topic_of(ev.AbnormalOrderFlagRaised): flag_raised,
    topic_of(ev.AbnormalOrderFlagReviewed): flag_reviewed,
    topic_of(ev.DeliveryRefused): refused,
}

PROJECTION = Projection(
    name="flags",
    # 2: an erased subject's signals and review notes go (SubjectErased); 3: and its refusals'
    # reasons (refusals loaded by order)
    version=3,
    rebuild_cost=3,
    description="abnormal-order flags (3.1.6) and refusal history (6.1(5))",
    tables=(FLAG_ORDERS, FLAGS, REFUSALS),
    handlers=HANDLERS,
)
