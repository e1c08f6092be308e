"""The retention audit trail (DOMAIN.md §7; ECL 31, PIPL 19/47): one of the three read models
the ledger exists for.

- ``retention_orders``: per order, when the transaction completed and ``retain_until``
  (completion + 3 years on the China calendar), and the last after-sales case that reopened
  it after completion (``reopened_case``, ``reopened_at``; ``completed_at`` is then null and
  ``retain_until`` the least it is kept until the case ends).
- ``retention_subjects``: per data subject (the account; its lifecycle stream's id), the holds
  on it (reference, reason, placed_at, actor), its restriction of processing (basis, since,
  until) and when the last of its recorded retentions ends.
- ``retention_steps``: every step of a subject's personal data as its event arrives, with its
  time (``at``), ``actor`` (API key id and role), legal ``basis`` and ``reference``:

  | step | event | basis | reference |
  |---|---|---|---|
  | ``scheduled`` | ``data-subject/RetentionScheduled``, a completion | ``ECL 31`` | — |
  | ``extended`` | the same, an after-sales case after completion | ``ECL 31`` | the case |
  | ``hold_placed``, ``hold_released`` | ``data-subject/LegalHold…`` | its reason | the hold's |
  | ``restricted`` | ``data-subject/ProcessingRestricted`` | its basis | — |
  | ``accessed`` | ``personal-data/Read`` | the basis cited, if any | its reference |
  | ``access_copy`` | ``data-subject/AccessCopyGiven``: a copy for the subject | ``PIPL 45`` | its |
  | ``erasure_requested`` | ``data-subject/ErasureRequested`` | ``PIPL 47`` | the request's |
  | ``erasure_refused`` | ``data-subject/ErasureRefused`` | ``LEGAL_HOLD`` | the request's |
  | ``erasure_deferred`` | ``…/ErasureDeferred`` | ``RETENTION_REQUIRED`` | the request's |
  | ``erased`` | ``data-subject/SubjectErased`` | ``PIPL 47`` | the request's |
  | ``deidentified`` | ``…/DirectIdentifiersRemoved`` | ``PIPL 47(1)``, agreement 4.1.2 | — |

  A restriction's law (PIPL 47 para 2) and until, a schedule's dates, a read's fields, the
  holds a refusal names, a deferral's date, the orders an erasure or de-identification
  reached are in ``detail``; ``retention_orders`` shows per order when it was de-identified
  and erased, ``retention_subjects`` the erasure's state (``requested``, ``refused``,
  ``deferred`` until a date, ``erased``).

An event of a subject's lifecycle stream names its subject through that stream
(``retention_subjects``); an event of a stream of its own names it in ``subject_field``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.utils import resolve_topic

from ledger.domain import data_subject as ds
from ledger.domain.ids import data_subject_id, order_id
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
        "delivered_at ts, completed_at ts, retain_until ts, reopened_at ts, reopened_case text, "
        "deidentified_at ts, erased_at ts, last_position int"
    ),
    key=("stream_id",),
    unique=(("order_no",),),
    indexes=(("retain_until",), ("subject_id",)),
    load_by="stream_id",
)
RETENTION_SUBJECTS = Table(
    name="retention_subjects",
    columns=columns(
        "stream_id text, subject_id text, holds json, restricted_basis text, "
        "restricted_since ts, restricted_until ts, retained_until ts, erasure text, "
        "erasure_deferred_until ts, erased_at ts, last_position int"
    ),
    key=("stream_id",),
    unique=(("subject_id",),),
    load_by="stream_id",
)
STEPS_TABLE = Table(
    name="retention_steps",
    columns=columns(
        "position int, subject_id text, step text, order_no text, topic text, at ts, "
        "actor json, basis text, reference text, detail json"
    ),
    key=("position",),
    indexes=(("subject_id", "position"), ("step", "at")),
)

Row = dict[str, Any]
Detail = Callable[[Event], Row]


def _no_detail(e: Event) -> Row:
    return {}


def _no_value(e: Event) -> str | None:
    return None


@dataclass(frozen=True)
class Step:
    """How an event becomes a step of the audit trail: its name, where its subject is (None:
    the subject whose lifecycle stream it is on), and its detail, basis and reference."""

    step: Callable[[Event], str]
    subject_field: str | None = None
    detail: Detail = field(default=_no_detail)
    basis: Callable[[Event], str | None] = field(default=_no_value)
    reference: Callable[[Event], str | None] = field(default=_no_value)


def _iso(value: Any) -> str | None:
    """A decoded time as RFC 3339 text in UTC, for a JSON column."""
    moment = when(value)
    return None if moment is None else moment.isoformat()


def _scheduled(e: Event) -> Row:
    d = e.fields(ds.RetentionScheduled)
    return {
        "cause": d.cause,
        "completed_at": _iso(d.completed_at),
        "retain_until": _iso(d.retain_until),
    }


def _restricted(e: Event) -> Row:
    d = e.fields(ds.ProcessingRestricted)
    return {"law": ds.RESTRICTION_LAW, "until": _iso(d.until)}


def _placed(e: Event) -> Row:
    return {"reason": e.fields(ds.LegalHoldPlaced).reason}


def _released(e: Event) -> Row:
    return {"reason": e.fields(ds.LegalHoldReleased).reason}


def _accessed(e: Event) -> Row:
    """Who read which fields (never the values: the event has none)."""
    d = e.fields(PersonalDataRead)
    return {"key_id": d.actor.get("key_id"), "role": d.actor.get("role"), "fields": d.fields}


def _access_copy(e: Event) -> Row:
    """The copy's position and files (names, digests, sizes: never the values copied)."""
    d = e.fields(ds.AccessCopyGiven)
    return {"position": d.position, "files": d.files}


def _refused(e: Event) -> Row:
    d = e.fields(ds.ErasureRefused)
    return {"law": ds.ERASURE_LAW, "holds": d.references}


def _deferred(e: Event) -> Row:
    return {"law": ds.RETENTION_LAW, "until": _iso(e.fields(ds.ErasureDeferred).until)}


def _erased(e: Event) -> Row:
    return {"orders": e.fields(ds.SubjectErased).order_nos}


def _deidentified(e: Event) -> Row:
    return {"orders": e.fields(ds.DirectIdentifiersRemoved).order_nos}


def _schedule_step(e: Event) -> str:
    return "scheduled" if e.fields(ds.RetentionScheduled).cause == "completion" else "extended"


def _named(name: str) -> Callable[[Event], str]:
    return lambda e: name


STEPS: dict[str, Step] = {
    topic_of(ds.RetentionScheduled): Step(
        _schedule_step,
        detail=_scheduled,
        basis=_named(ds.RETENTION_LAW),
        reference=lambda e: e.fields(ds.RetentionScheduled).case_id,
    ),
    topic_of(ds.LegalHoldPlaced): Step(
        _named("hold_placed"),
        detail=_placed,
        basis=lambda e: e.fields(ds.LegalHoldPlaced).reason,
        reference=lambda e: e.fields(ds.LegalHoldPlaced).reference,
    ),
    topic_of(ds.LegalHoldReleased): Step(
        _named("hold_released"),
        detail=_released,
        basis=lambda e: e.fields(ds.LegalHoldReleased).reason,
        reference=lambda e: e.fields(ds.LegalHoldReleased).reference,
    ),
    topic_of(ds.ProcessingRestricted): Step(
        _named("restricted"),
        detail=_restricted,
        basis=lambda e: e.fields(ds.ProcessingRestricted).basis,
    ),
    topic_of(PersonalDataRead): Step(
        _named("accessed"),
        subject_field="subject_id",
        detail=_accessed,
        basis=lambda e: e.fields(PersonalDataRead).legal_basis,
        reference=lambda e: e.fields(PersonalDataRead).reference,
    ),
    topic_of(ds.ErasureRequested): Step(
        _named("erasure_requested"),
        basis=_named(ds.ERASURE_LAW),
        reference=lambda e: e.fields(ds.ErasureRequested).reference,
    ),
    topic_of(ds.ErasureRefused): Step(
        _named("erasure_refused"),
        detail=_refused,
        basis=lambda e: e.fields(ds.ErasureRefused).code,
        reference=lambda e: e.fields(ds.ErasureRefused).reference,
    ),
    topic_of(ds.ErasureDeferred): Step(
        _named("erasure_deferred"),
        detail=_deferred,
        basis=lambda e: e.fields(ds.ErasureDeferred).code,
        reference=lambda e: e.fields(ds.ErasureDeferred).reference,
    ),
    topic_of(ds.SubjectErased): Step(
        _named("erased"),
        detail=_erased,
        basis=_named(ds.ERASURE_LAW),
        reference=lambda e: e.fields(ds.SubjectErased).reference,
    ),
    topic_of(ds.DirectIdentifiersRemoved): Step(
        _named("deidentified"), detail=_deidentified, basis=_named(ds.DEIDENTIFICATION_LAW)
    ),
    topic_of(ds.AccessCopyGiven): Step(
        _named("access_copy"),
        detail=_access_copy,
        basis=_named(ds.ACCESS_LAW),
        reference=lambda e: e.fields(ds.AccessCopyGiven).reference,
    ),
}


def record_step(e: Event, b: Batch) -> None:
    """Append the event's step to the trail; nothing for a lifecycle stream never opened."""
    spec = STEPS[e.topic]
    fields = e.fields(resolve_topic(e.topic))
    if spec.subject_field is None:
        subject = b.get("retention_subjects", e.stream)
        if subject is None:
            return
        subject_id = subject["subject_id"]
    else:
        subject_id = getattr(fields, spec.subject_field)
    b.add(
        "retention_steps",
        {
            "position": e.position,
            "subject_id": subject_id,
            "step": spec.step(e),
            "order_no": getattr(fields, "order_no", None),
            "topic": e.topic,
            "at": e.at,
            "actor": getattr(fields, "actor", None),
            "basis": spec.basis(e),
            "reference": spec.reference(e),
            "detail": spec.detail(e),
        },
    )


# -- per order ------------------------------------------------------------------------------
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
            "reopened_at": None,
            "reopened_case": None,
            "deidentified_at": None,
            "erased_at": None,
            "last_position": e.position,
        },
    )
    subject_row(b, d.account_no, e.position)


def _on_order(change: Callable[[Row, Event], None]) -> Handler:
    def handle(e: Event, b: Batch) -> None:
        row = b.edit("retention_orders", e.stream)
        if row is not None:
            change(row, e)
            row["last_position"] = e.position

    return handle


def _stamp(column: str) -> Handler:
    def change(row: Row, e: Event) -> None:
        row[column] = e.at

    return _on_order(change)


def _completed(row: Row, e: Event) -> None:
    d = e.fields(ev.TransactionCompleted)
    row["completed_at"] = when(d.completed_at)
    row["retain_until"] = when(d.retain_until)


def _reopened(row: Row, e: Event) -> None:
    d = e.fields(ev.TransactionReopened)
    row["completed_at"] = None
    row["retain_until"] = when(d.retain_until)
    row["reopened_at"] = e.at
    row["reopened_case"] = d.return_id


# -- per subject ----------------------------------------------------------------------------
def subject_stream(subject_id: str) -> str:
    """The key of a subject's row: its lifecycle stream's id, as events name streams."""
    return str(data_subject_id(subject_id))


def subject_row(b: Batch, subject_id: str, position: int) -> None:
    """The subject's row, made on the first event that names the subject (its order's
    submission, or its lifecycle stream's opening); left as it is if it exists."""
    key = subject_stream(subject_id)
    row = b.get("retention_subjects", key)
    if row is None:
        row = {
            "stream_id": key,
            "subject_id": subject_id,
            "holds": [],
            "restricted_basis": None,
            "restricted_since": None,
            "restricted_until": None,
            "retained_until": None,
            "erasure": None,
            "erasure_deferred_until": None,
            "erased_at": None,
            "last_position": position,
        }
        b.put("retention_subjects", row)


def prefetch_subjects(events: Sequence[Event], b: Batch) -> None:
    """The rows of the subjects the batch's submissions name, in one query."""
    submissions = topic_of(ev.OrderSubmitted)
    keys = {
        subject_stream(e.fields(ev.OrderSubmitted).account_no)
        for e in events
        if e.topic == submissions
    }
    b.prefetch("retention_subjects", keys)


def registered(e: Event, b: Batch) -> None:
    subject_row(b, e.fields(ds.DataSubjectRegistered).subject_id, e.position)


def _on_subject(change: Callable[[Row, Event], None]) -> Handler:
    """A lifecycle event: change the subject's row, then append the step."""

    def handle(e: Event, b: Batch) -> None:
        row = b.edit("retention_subjects", e.stream)
        if row is not None:
            change(row, e)
            row["last_position"] = e.position
        record_step(e, b)

    return handle


def _retention(row: Row, e: Event) -> None:
    until = when(e.fields(ds.RetentionScheduled).retain_until)
    current = row["retained_until"]
    row["retained_until"] = until if current is None or until is None else max(current, until)


def _hold_placed(row: Row, e: Event) -> None:
    d = e.fields(ds.LegalHoldPlaced)
    others = [h for h in row["holds"] if h["reference"] != d.reference]
    hold = {"reference": d.reference, "reason": d.reason, "placed_at": _iso(e.at)}
    row["holds"] = [*others, {**hold, "actor": d.actor}]


def _hold_released(row: Row, e: Event) -> None:
    reference = e.fields(ds.LegalHoldReleased).reference
    row["holds"] = [h for h in row["holds"] if h["reference"] != reference]


def _unchanged(row: Row, e: Event) -> None:
    """A step that changes nothing the subject's row shows (an access copy)."""


def _restricted_row(row: Row, e: Event) -> None:
    d = e.fields(ds.ProcessingRestricted)
    row["restricted_basis"] = d.basis
    row["restricted_since"] = e.at
    row["restricted_until"] = when(d.until)


def _erasure(state: str) -> Callable[[Row, Event], None]:
    def change(row: Row, e: Event) -> None:
        if row["erasure"] != "erased":  # a request after erasure changes nothing
            row["erasure"] = state

    return change


def _erasure_deferred(row: Row, e: Event) -> None:
    row["erasure"] = "deferred"
    row["erasure_deferred_until"] = when(e.fields(ds.ErasureDeferred).until)


def _subject_erased(row: Row, e: Event) -> None:
    row["erasure"] = "erased"
    row["erasure_deferred_until"] = None
    row["erased_at"] = e.at


def _stamp_orders(column: str, orders: Callable[[Event], list[str]]) -> Handler:
    """A lifecycle event reaching orders: stamp each order's row, then the subject's."""

    def handle(e: Event, b: Batch) -> None:
        for order_no in orders(e):
            row = b.edit("retention_orders", str(order_id(order_no)))
            if row is not None:
                row[column] = e.at
                row["last_position"] = e.position

    return handle


def _both(*handlers: Handler) -> Handler:
    def handle(e: Event, b: Batch) -> None:
        for handler in handlers:
            handler(e, b)

    return handle


HANDLERS: dict[str, Handler] = {
    topic_of(PersonalDataRead): record_step,
    topic_of(ev.OrderSubmitted): submitted,
    topic_of(ev.OrderClosed): _stamp("closed_at"),
    topic_of(ev.Delivered): _stamp("delivered_at"),
    topic_of(ev.TransactionCompleted): _on_order(_completed),
    topic_of(ev.TransactionReopened): _on_order(_reopened),
    topic_of(ds.DataSubjectRegistered): registered,
    topic_of(ds.RetentionScheduled): _on_subject(_retention),
    topic_of(ds.LegalHoldPlaced): _on_subject(_hold_placed),
    topic_of(ds.LegalHoldReleased): _on_subject(_hold_released),
    topic_of(ds.ProcessingRestricted): _on_subject(_restricted_row),
    topic_of(ds.AccessCopyGiven): _on_subject(_unchanged),
    topic_of(ds.ErasureRequested): _on_subject(_erasure("requested")),
    topic_of(ds.ErasureRefused): _on_subject(_erasure("refused")),
    topic_of(ds.ErasureDeferred): _on_subject(_erasure_deferred),
    topic_of(ds.SubjectErased): _both(
        _stamp_orders("erased_at", lambda e: e.fields(ds.SubjectErased).order_nos),
        _on_subject(_subject_erased),
    ),
    topic_of(ds.DirectIdentifiersRemoved): _both(
        _stamp_orders("deidentified_at", lambda e: e.fields(ds.DirectIdentifiersRemoved).order_nos),
        _on_subject(lambda row, e: None),
    ),
}

PROJECTION = Projection(
    name="retention",
    # 3: the subject's lifecycle stream: schedules (and their extension by a late case),
    # holds and restrictions, each step with actor, basis and reference; a row per subject
    # 4: access copies (PIPL 45) as ``access_copy`` steps
    # 5: erasure (requested, refused, deferred, erased) and de-identification, per subject
    # and per order; a read's legal basis and reference
    version=5,
    rebuild_cost=7,
    description="retention deadlines, holds, restrictions and the personal-data audit trail (§7)",
    tables=(RETENTION_ORDERS, RETENTION_SUBJECTS, STEPS_TABLE),
    handlers=HANDLERS,
    prefetch=prefetch_subjects,
)
