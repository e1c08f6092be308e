"""A data subject's personal-data lifecycle (PIPL 47, ECL 31; DOMAIN.md section 7): one
stream per subject, ``DataSubject``, holding what decides whether its data may go.

A data subject is whom the key store keys (ledger/keystore.py): today the account whose key
seals an order's personal fields (ledger/handlers/submission.py), so its id is the account
number. Its stream records, each as an event with its time and actor:

- the **retention schedule** of each of its orders (``RetentionScheduled``): when the
  transaction completed and ``retain_until``, written with the order's own
  ``TransactionCompleted`` (or ``TransactionReopened``, when an after-sales case opened after
  completion moves it) in the same transaction;
- **legal holds** (``LegalHoldPlaced``, ``LegalHoldReleased``): a dispute or an
  investigation, by reference; while one is on, neither de-identification nor erasure touches
  the subject's data;
- **restricted processing** (``ProcessingRestricted``, PIPL 47 para 2): the data is kept
  while a legal period runs but no longer processed: a contact read is refused
  (``PROCESSING_RESTRICTED``, ledger/contact_reads.py) unless an auditor or regulator cites a
  legal basis; ``restricts`` says which orders it covers;
- **erasure** (PIPL 47; ``request_erasure``): the request (``ErasureRequested``) and its
  outcome: ``ErasureRefused`` under a hold, ``ErasureDeferred`` (with the restriction it
  applies instead) while a retention runs, else ``SubjectErased``, after which the service
  layer destroys the keys (ledger/erasure.py); a deferred erasure is done by the retention run
  once its date has passed (ledger/retention_run.py);
- **de-identification** (``DirectIdentifiersRemoved``, PIPL 47(1), agreement 4.1.2): once no
  open order or after-sales case needs the direct identifiers of its completed orders and no
  hold is on (``deidentification_due``), decided by the retention run.
- **access copies** (``AccessCopyGiven``, PIPL 45): a copy of its data made for the subject
  (``ledger access``; ledger/access_copy.py), with the files' names and digests, never the
  values.

Why one stream per subject rather than the schedule on each order: erasure is decided per
subject, on every one of its orders, its holds and its restriction at once. With all of them
on one stream an erasure reads one stream and is checked against one version: a hold placed,
a transaction completed or an after-sales case reopened concurrently makes it clash and be
decided again, never go through on what it read before (``check_erasable``). The order keeps
its own record of completion (``TransactionCompleted``) as the transaction's fact.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from eventsourcing.domain import Aggregate

from ledger.domain import codes
from ledger.domain.china_time import china_text
from ledger.domain.context import Ctx
from ledger.domain.errors import NotFound, RuleViolation
from ledger.domain.ids import data_subject_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.repeats import RepeatedFact
from ledger.domain.topics import topic

HoldReason = Literal["dispute", "investigation"]
# Why processing stops while the records are kept (PIPL 47 para 2): the account was
# cancelled (ECL 24; ``terminate_account``), the purpose of processing ended (PIPL 47(1)), or
# the subject asked for erasure while a retention runs (PIPL 47 para 2: kept, not processed).
RestrictionBasis = Literal["account_cancelled", "purpose_ended", "erasure_deferred"]
# What set an order's retention: its completion, or an after-sales case opened after it.
RetentionCause = Literal["completion", "after_sales_case"]

RETENTION_LAW = "ECL 31"
RESTRICTION_LAW = "PIPL 47 para 2"
ACCESS_LAW = "PIPL 45"
ERASURE_LAW = "PIPL 47"
DEIDENTIFICATION_LAW = "PIPL 47(1), agreement 4.1.2"
# How long a retired direct-identifier key generation lives on before the retention run
# destroys it: other processes keep a subject's current generation cached for 30 s
# (ledger/keystore.py, CACHE_TTL_S) and may be sealing a new order under it meanwhile.
DIRECT_KEY_GRACE = timedelta(seconds=60)
# The codes an erasure request's outcome names when it does not erase (ledger/domain/codes.py).
ErasureOutcome = Literal["erased", "refused", "deferred"]


@topic("data-subject/Event")
class DataSubjectEvent(Aggregate.Event):
    """An event of a ``DataSubject`` stream; ``actor`` (``Actor.as_dict()``) is who caused it."""

    class_version = 1
    command_id: str


@topic("data-subject/Registered")
class DataSubjectRegistered(DataSubjectEvent, Aggregate.Created):
    """The stream opens with the first lifecycle event that concerns the subject."""

    subject_id: str

    def apply(self, agg: Any) -> None:
        agg.subject_id = self.subject_id
        agg.retention = {}
        agg.holds = {}
        agg.released = {}
        agg.restriction = None
        agg.erasure = None
        agg.erased = None
        agg.deidentified = {}
        agg.retired_direct = {}


@topic("data-subject/RetentionScheduled")
class RetentionScheduled(DataSubjectEvent):
    """Order ``order_no``'s records are kept until ``retain_until`` (ECL 31): three years
    from ``completed_at`` (cause ``completion``), or, when an after-sales case ``case_id``
    opened after completion (cause ``after_sales_case``, ``completed_at`` None), at least
    three years from the case's opening, until the transaction completes again."""

    order_no: str
    cause: RetentionCause
    completed_at: datetime | None
    retain_until: datetime
    case_id: str | None
    actor: dict[str, str | None]

    def apply(self, agg: Any) -> None:
        agg.retention[self.order_no] = {
            "completed_at": self.completed_at,
            "retain_until": self.retain_until,
            "open_case": self.case_id if self.cause == "after_sales_case" else None,
        }


@topic("data-subject/LegalHoldPlaced")
class LegalHoldPlaced(DataSubjectEvent):
    """A hold under ``reference`` (the dispute's or investigation's file), for ``reason``."""

    reference: str
    reason: HoldReason
    actor: dict[str, str | None]

    def apply(self, agg: Any) -> None:
        agg.released.pop(self.reference, None)
        agg.holds[self.reference] = {
            "reason": self.reason,
            "placed_at": self.timestamp,
            "command_id": self.command_id,
        }


@topic("data-subject/LegalHoldReleased")
class LegalHoldReleased(DataSubjectEvent):
    """The hold under ``reference`` (placed for ``reason``) is released."""

    reference: str
    reason: HoldReason
    actor: dict[str, str | None]

    def apply(self, agg: Any) -> None:
        del agg.holds[self.reference]
        agg.released[self.reference] = self.command_id


@topic("data-subject/ProcessingRestricted")
class ProcessingRestricted(DataSubjectEvent):
    """From now until ``until`` the subject's data is stored but not processed (PIPL 47
    para 2), on ``basis``. A later one replaces it (a retention that ran longer)."""

    basis: RestrictionBasis
    until: datetime
    actor: dict[str, str | None]

    def apply(self, agg: Any) -> None:
        agg.restriction = {"basis": self.basis, "until": self.until, "since": self.timestamp}


@topic("data-subject/AccessCopyGiven")
class AccessCopyGiven(DataSubjectEvent):
    """A copy of the subject's personal data and orders was made for the subject (PIPL 45):
    who asked (``actor``), under which ``reference`` (the request's file id, if given), the
    log ``position`` the copy reflects, and each file made (``files``: name, ``sha256``,
    ``bytes``). Never the values copied: the record of a copy must not become one."""

    reference: str | None
    position: int
    files: list[dict[str, Any]]
    actor: dict[str, str | None]

    def apply(self, agg: Any) -> None:
        pass  # a fact for the trail; nothing the lifecycle decides on changes


@topic("data-subject/ErasureRequested")
class ErasureRequested(DataSubjectEvent):
    """The subject (or an admin for it) asked that its personal data be erased (PIPL 47),
    under ``reference`` (the request's file id, if one was given). What became of it is the
    next event: ``ErasureRefused``, ``ErasureDeferred`` or ``SubjectErased``."""

    reference: str | None
    actor: dict[str, str | None]


@topic("data-subject/ErasureRefused")
class ErasureRefused(DataSubjectEvent):
    """The request was refused: ``code`` ``LEGAL_HOLD`` (PIPL 47), the holds under
    ``references`` being on; or ``ORDER_IN_PROGRESS`` (PIPL 13(2)), an order of the subject
    being performed (``references`` empty). It is not kept waiting: a new request is needed
    once released or completed (an earlier request deferred for a retention still waits,
    and still waits for holds)."""

    reference: str | None
    code: str
    references: list[str]
    actor: dict[str, str | None]


@topic("data-subject/ErasureDeferred")
class ErasureDeferred(DataSubjectEvent):
    """The request waits for the law's retention (``RETENTION_REQUIRED``, ECL 31) to end at
    ``until``; meanwhile the data is restricted (``ProcessingRestricted``, PIPL 47 para 2).
    The retention run erases once ``until`` has passed (ledger/retention_run.py)."""

    reference: str | None
    code: str
    until: datetime
    actor: dict[str, str | None]

    def apply(self, agg: Any) -> None:
        agg.erasure = {
            "deferred_until": self.until,
            "reference": self.reference,
            "command_id": self.command_id,
        }


@topic("data-subject/SubjectErased")
class SubjectErased(DataSubjectEvent):
    """The subject's personal data is erased (PIPL 47): its keys are destroyed right after
    this event is saved (crypto-shredding; a crash between the two is finished by the
    retention run), and projections blank its personal fields on ``order_nos`` (its orders
    the stream knows). Amounts, goods, times and states stay (ECL 31)."""

    subject_id: str
    reference: str | None
    order_nos: list[str]
    actor: dict[str, str | None]

    def apply(self, agg: Any) -> None:
        agg.erasure = None
        agg.erased = {"at": self.timestamp, "command_id": self.command_id}


@topic("data-subject/DirectIdentifiersRemoved")
class DirectIdentifiersRemoved(DataSubjectEvent):
    """The direct identifiers (name, phone, address) on ``order_nos`` are made unreadable:
    no open order or after-sales case needs them any more and no hold is on (PIPL 47(1),
    agreement 4.1.2: 去标识化 once the purpose is done). The records stay usable for
    statistics and audit. ``retired_keys`` (v2) are the direct-identifier key generations
    (``d``, ``d2``, …) that sealed them, retired just before this event (the subject's new
    orders use the next one) and destroyed by the retention run once ``DIRECT_KEY_GRACE``
    has passed (``direct_keys_due``)."""

    class_version = 2
    subject_id: str
    order_nos: list[str]
    retired_keys: list[str]
    actor: dict[str, str | None]

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """v1 destroyed no key (the key store had one direct key per subject): none retired."""
        state["retired_keys"] = []

    def apply(self, agg: Any) -> None:
        for order_no in self.order_nos:
            agg.deidentified[order_no] = self.timestamp
        for kind in self.retired_keys:
            agg.retired_direct.setdefault(kind, self.timestamp)


class RetentionRequired(RuleViolation):
    """Erasure inside a retention period (``RETENTION_REQUIRED``, ECL 31): ``retain_until``
    is when the last of the subject's records may go, so an erasure can wait for it."""

    def __init__(self, message: str, retain_until: datetime) -> None:
        super().__init__(codes.RETENTION_REQUIRED, message)
        self.retain_until = retain_until


class DataSubject(JournaledAggregate):
    """The lifecycle stream of one data subject (see the module's docstring)."""

    TOPIC = "mall-ledger/data-subject"
    Event = DataSubjectEvent
    Created = DataSubjectRegistered

    if TYPE_CHECKING:
        subject_id: str
        # order number -> completed_at, retain_until, open_case (a case id, or None)
        retention: dict[str, dict[str, Any]]
        # reference -> reason, placed_at, command_id: the holds that are on
        holds: dict[str, dict[str, Any]]
        # reference -> the command id that released it (a repeat of that release answers so)
        released: dict[str, str]
        restriction: dict[str, Any] | None
        # the erasure waiting: requested_at/command_id, or deferred_until/reference/command_id
        erasure: dict[str, Any] | None
        # when and by which command the subject was erased (None: not erased)
        erased: dict[str, Any] | None
        # order number -> when its direct identifiers were removed
        deidentified: dict[str, datetime]
        # direct-identifier key generation -> when de-identification retired it
        retired_direct: dict[str, datetime]

    @classmethod
    def register(cls, ctx: Ctx, subject_id: str) -> DataSubject:
        """A new stream for ``subject_id``; the caller adds it once its command succeeded."""
        return cls._create(
            DataSubjectRegistered,
            id=data_subject_id(subject_id),
            timestamp=ctx.at,
            command_id=ctx.command_id,
            subject_id=subject_id,
        )

    def stream_label(self) -> str:
        return "this data subject's stream"

    def _emit(self, event_class: Any, ctx: Ctx, **fields: Any) -> None:
        self.trigger_event(
            event_class,
            timestamp=ctx.at,
            command_id=ctx.command_id,
            actor=ctx.actor.as_dict(),
            **fields,
        )

    # -- retention (ECL 31) ------------------------------------------------------------------
    @property
    def retained_until(self) -> datetime | None:
        """When the last of the subject's recorded retentions ends (None: none recorded)."""
        ends = [entry["retain_until"] for entry in self.retention.values()]
        return max(ends) if ends else None

    def schedule_retention(
        self,
        ctx: Ctx,
        order_no: str,
        retain_until: datetime,
        *,
        completed_at: datetime | None,
        case_id: str | None = None,
    ) -> None:
        """Record ``order_no``'s retention: its completion (``case_id`` None), or an
        after-sales case ``case_id`` opened after completion (``completed_at`` None)."""
        cause: RetentionCause = "completion" if case_id is None else "after_sales_case"
        self._emit(
            RetentionScheduled,
            ctx,
            order_no=order_no,
            cause=cause,
            completed_at=completed_at,
            retain_until=retain_until,
            case_id=case_id,
        )

    # -- legal holds ---------------------------------------------------------------------------
    def place_hold(self, ctx: Ctx, reference: str, reason: HoldReason) -> None:
        """Put a hold on under ``reference``. The same reference already on with the same
        reason is a repeat (``RepeatedFact``); with another, ``LEGAL_HOLD_REFERENCE_REUSED``.
        A reference released before may be placed again (a dispute reopened)."""
        held = self.holds.get(reference)
        if held is not None:
            if held["reason"] == reason:
                raise RepeatedFact(held["command_id"])
            raise RuleViolation(
                codes.LEGAL_HOLD_REFERENCE_REUSED,
                "a legal hold under that reference is already on with another reason",
            )
        self._emit(LegalHoldPlaced, ctx, reference=reference, reason=reason)

    def release_hold(self, ctx: Ctx, reference: str) -> None:
        """Release the hold under ``reference``. Releasing it again is a repeat of the
        release; a reference never placed (or not on) is ``NOT_FOUND``."""
        held = self.holds.get(reference)
        if held is None:
            released_by = self.released.get(reference)
            if released_by is not None:
                raise RepeatedFact(released_by)
            raise NotFound("no legal hold under that reference is on for this data subject")
        self._emit(LegalHoldReleased, ctx, reference=reference, reason=held["reason"])

    # -- restricted processing (PIPL 47 para 2) ------------------------------------------------
    def restrict_while_retained(self, ctx: Ctx, basis: RestrictionBasis) -> None:
        """While a retention runs, record that the data is kept but not processed, until
        the last retention ends; again, with the later date, when a retention runs longer
        than the restriction recorded. Nothing when no retention runs at ``ctx.at``."""
        until = self.retained_until
        if until is None or until <= ctx.at:
            return
        current = self.restriction
        if current is not None and current["basis"] == basis and current["until"] >= until:
            return
        self._emit(ProcessingRestricted, ctx, basis=basis, until=until)

    # -- access copies (PIPL 45) ----------------------------------------------------------------
    def give_access_copy(
        self, ctx: Ctx, reference: str | None, position: int, files: list[dict[str, Any]]
    ) -> None:
        """Record that a copy of the subject's data as of log ``position`` was made into
        ``files`` (name, sha256, bytes each), for ``ctx.actor``. Given also while processing
        is restricted: the subject's own access is a right the restriction does not suspend
        (PIPL 45; PIPL 47 para 2 stops processing, not the subject's access)."""
        self._emit(AccessCopyGiven, ctx, reference=reference, position=position, files=files)

    def restricts(self, order_no: str, at: datetime) -> bool:
        """Is ``order_no``'s personal data restricted at ``at`` (PIPL 47 para 2: stored, not
        processed)? A cancelled account's or a deferred erasure's restriction covers every
        order of the subject; a purpose that ended covers the orders whose transaction
        completed (a new order's purpose has not ended)."""
        current = self.restriction
        if current is None or current["until"] <= at:
            return False
        return current["basis"] != "purpose_ended" or order_no in self.retention

    # -- erasure (PIPL 47) ---------------------------------------------------------------------
    def request_erasure(
        self, ctx: Ctx, reference: str | None, open_orders: set[str] | None = None
    ) -> dict[str, Any]:
        """Record the request, then decide it (``check_erasable``): refused under a legal hold
        (``ErasureRefused``, LEGAL_HOLD), refused while an order of the subject is still
        being performed (``open_orders``, from the log: ``ErasureRefused``,
        ORDER_IN_PROGRESS, PIPL 13(2)), deferred under a retention (``ErasureDeferred``,
        RETENTION_REQUIRED, with the restriction it applies instead), else ``SubjectErased``.
        Returns the outcome (``erasure_outcome``) for the command's result. A subject
        already erased records the request and answers ``erased`` again."""
        self._emit(ErasureRequested, ctx, reference=reference)
        if self.erased is not None:
            return self._erased_outcome()
        if open_orders and not self.holds:
            exc = RuleViolation(
                codes.ORDER_IN_PROGRESS,
                f"order(s) {', '.join(sorted(open_orders))} of the data subject are still being "
                "performed: their personal data is needed until they complete; ask again then",
            )
            self._emit(ErasureRefused, ctx, reference=reference, code=exc.code, references=[])
            return erasure_outcome("refused", exc, None)
        return self._decide_erasure(ctx, reference)

    def erasure_due(self, at: datetime) -> bool:
        """A deferred erasure whose retention ended by ``at`` (the retention run erases)."""
        waiting = self.erasure
        return (
            self.erased is None
            and waiting is not None
            and "deferred_until" in waiting
            and waiting["deferred_until"] <= at
        )

    def complete_erasure(self, ctx: Ctx) -> dict[str, Any]:
        """The retention run's step for a due deferred erasure: decided again as at
        ``ctx.at`` (a hold placed since keeps it waiting, with no event; a retention that
        grew defers it again to the new date). Returns the outcome."""
        assert self.erasure_due(ctx.at), "the retention run checks erasure_due first"
        if self.holds:
            return {"outcome": "waiting", "code": codes.LEGAL_HOLD.code}
        return self._decide_erasure(ctx, self.erasure["reference"] if self.erasure else None)

    def _decide_erasure(self, ctx: Ctx, reference: str | None) -> dict[str, Any]:
        try:
            check_erasable(self, ctx.at)
        except RetentionRequired as exc:
            until = exc.retain_until
            self._emit(ErasureDeferred, ctx, reference=reference, code=exc.code, until=until)
            current = self.restriction
            if (current is None or current["until"] < until) and until > ctx.at:
                self._emit(ProcessingRestricted, ctx, basis="erasure_deferred", until=until)
            return erasure_outcome("deferred", exc, until)
        except RuleViolation as exc:
            held = sorted(self.holds)
            self._emit(ErasureRefused, ctx, reference=reference, code=exc.code, references=held)
            return erasure_outcome("refused", exc, None)
        orders = sorted(self.retention)
        self._emit(
            SubjectErased, ctx, subject_id=self.subject_id, reference=reference, order_nos=orders
        )
        return self._erased_outcome()

    def _erased_outcome(self) -> dict[str, Any]:
        assert self.erased is not None
        return {
            "outcome": "erased",
            "subject_id": self.subject_id,
            "erased_at": self.erased["at"].isoformat(),
        }

    # -- de-identification (PIPL 47(1), agreement 4.1.2) ---------------------------------------
    def deidentification_due(self, open_orders: set[str]) -> list[str]:
        """The orders whose direct identifiers may be removed now: completed (on this
        stream), not yet de-identified; none while a legal hold is on, an after-sales case
        reopened an order, or any order of the subject is still open (``open_orders``, from
        the log: submitted and not completed), since those still need them. None once
        erased (erasure reached further)."""
        if self.holds or self.erased is not None or open_orders or self.case_open:
            return []
        return sorted(set(self.retention) - set(self.deidentified))

    def direct_keys_due(self, at: datetime, open_orders: set[str]) -> list[str]:
        """The retired direct-identifier key generations that may be destroyed at ``at``
        (PIPL 47(1)): retired at least ``DIRECT_KEY_GRACE`` ago, so no process still seals a
        new order under them; none while a hold is on, an order of the subject is open or an
        after-sales case reopened one (an open order may hold data sealed under them), or
        once erased (the erasure destroyed every key). Destroyed ones are listed too: a
        destroy is idempotent."""
        if self.holds or self.erased is not None or open_orders or self.case_open:
            return []
        return sorted(
            kind
            for kind, retired in self.retired_direct.items()
            if retired + DIRECT_KEY_GRACE <= at
        )

    @property
    def case_open(self) -> bool:
        """Has an after-sales case reopened one of the subject's completed orders (its
        retention then runs at least until the case ends, date unknown)?"""
        return any(entry["open_case"] is not None for entry in self.retention.values())

    def remove_direct_identifiers(
        self, ctx: Ctx, open_orders: set[str], retired_keys: list[str]
    ) -> list[str]:
        """Record ``DirectIdentifiersRemoved`` for the orders due (``deidentification_due``),
        naming the direct-identifier key generations just retired (``retired_keys``), and,
        while a retention runs, the restriction the ended purpose brings (PIPL 47 para 2).
        Raises ``LEGAL_HOLD`` under a hold; returns the orders (empty: nothing due)."""
        if self.holds:
            check_erasable(self, ctx.at)  # raises LEGAL_HOLD
        due = self.deidentification_due(open_orders)
        if due:
            self._emit(
                DirectIdentifiersRemoved,
                ctx,
                subject_id=self.subject_id,
                order_nos=due,
                retired_keys=list(retired_keys),
            )
            if self.restriction is None:
                self.restrict_while_retained(ctx, "purpose_ended")
        return due


def erasure_outcome(
    outcome: ErasureOutcome, refusal: RuleViolation, until: datetime | None
) -> dict[str, Any]:
    """An erasure that did not erase, as its command's result: the code, the message (orders
    and dates, never personal data) and the date it waits for; ``ledger.erasure`` turns it
    back into the refusal on every send of the command."""
    found: dict[str, Any] = {"outcome": outcome, "code": refusal.code, "message": refusal.message}
    if until is not None:
        found["retain_until"] = until.isoformat()
    return found


def check_erasable(subject: DataSubject | None, at: datetime) -> None:
    """May the subject's personal data be de-identified or erased at ``at``? Returns None if
    so; raises, in this order:

    - ``LEGAL_HOLD`` (``RuleViolation``, PIPL 47) while any legal hold is on;
    - ``RETENTION_REQUIRED`` (``RetentionRequired``, ECL 31, with ``retain_until``) while an
      order's records must still be kept: naming the latest ``retain_until`` and its order.

    ``subject`` is the subject's ``DataSubject`` stream (None: it has none, so no hold and no
    completed order). Orders not yet completed are not on the stream: they are still being
    performed, and what needs them is the caller's to check.
    """
    if subject is None:
        return
    if subject.holds:
        reasons = ", ".join(sorted({hold["reason"] for hold in subject.holds.values()}))
        raise RuleViolation(
            codes.LEGAL_HOLD,
            f"the data subject is under {len(subject.holds)} legal hold(s) ({reasons}): "
            "its data is kept as it is until each is released",
        )
    running = {
        order_no: entry
        for order_no, entry in subject.retention.items()
        if entry["retain_until"] > at or entry["open_case"] is not None
    }
    if not running:
        return
    order_no, last = max(running.items(), key=lambda item: (item[1]["retain_until"], item[0]))
    until = last["retain_until"]
    least = "at least " if last["open_case"] is not None else ""
    raise RetentionRequired(
        f"order {order_no}'s transaction record is kept {least}until {china_text(until)} "
        f"China time ({len(running)} order(s) under retention); erasure can run from then",
        until,
    )
