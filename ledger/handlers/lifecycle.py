"""The personal-data lifecycle (PIPL 47, ECL 31): legal holds, and what completions,
late after-sales cases and account terminations record on a data subject's stream
(ledger/domain/data_subject.py)."""

from __future__ import annotations

from ledger import commands as c
from ledger.domain.account import Account
from ledger.domain.data_subject import DataSubject
from ledger.domain.errors import NotFound
from ledger.domain.ids import account_id, data_subject_id
from ledger.domain.order.aggregate import Order
from ledger.handlers.registry import handles
from ledger.unit_of_work import UnitOfWork


def subject_for(subject_id: str, uow: UnitOfWork) -> DataSubject:
    """The subject's lifecycle stream, or a new one; the caller adds it once its command
    succeeded."""
    existing = uow.get(DataSubject, data_subject_id(subject_id))
    return existing or DataSubject.register(uow.now, subject_id)


def record_retention(order: Order, uow: UnitOfWork, case_id: str | None = None) -> None:
    """Copy the order's retention (just completed, or reopened by the after-sales case
    ``case_id``) to its subject's stream; if the account was cancelled (terminated, 6.1),
    its data stays restricted for as long as the retention now runs (PIPL 47 para 2)."""
    assert order.retain_until is not None, "recorded after completion or a reopening"
    subject = subject_for(order.account_no, uow)
    subject.schedule_retention(
        uow.now,
        order.order_no,
        order.retain_until,
        completed_at=order.completed_at,
        case_id=case_id,
    )
    account = uow.get(Account, account_id(order.account_no))
    if account is not None and account.terminated:
        subject.restrict_while_retained(uow.now, "account_cancelled")
    uow.add(subject)


def restrict_cancelled_account(account_no: str, uow: UnitOfWork) -> None:
    """An account terminated while a retention of its orders runs: its data is kept but no
    longer processed until the last one ends (PIPL 47 para 2). Orders not yet completed
    are recorded when they complete (``record_retention``)."""
    subject = uow.get(DataSubject, data_subject_id(account_no))
    if subject is not None:
        subject.restrict_while_retained(uow.now, "account_cancelled")


@handles(c.PlaceLegalHold)
def place_legal_hold(cmd: c.PlaceLegalHold, uow: UnitOfWork) -> None:
    subject = subject_for(cmd.subject_id, uow)
    subject.place_hold(uow.now, cmd.reference, cmd.reason)
    uow.add(subject)


@handles(c.ReleaseLegalHold)
def release_legal_hold(cmd: c.ReleaseLegalHold, uow: UnitOfWork) -> None:
    subject = subject_for(cmd.subject_id, uow)
    subject.release_hold(uow.now, cmd.reference)
    uow.add(subject)


@handles(c.RequestErasure)
def request_erasure(cmd: c.RequestErasure, uow: UnitOfWork) -> None:
    """Record the request and its outcome on the subject's stream; the outcome is the
    command's result (``ledger.erasure`` reports a refusal or deferral as its code, and
    destroys the keys once ``SubjectErased`` is saved). The subject's orders still being
    performed are read from the log: an erasure waits for them (``ORDER_IN_PROGRESS``).

    A subject the ledger never knew (no lifecycle stream, no order being performed, no key
    ever made) is ``NOT_FOUND`` and nothing is written: recording an erasure for a mistyped
    id would destroy no data and bar that account's first order for ever (SUBJECT_ERASED)."""
    open_orders = uow.open_orders(cmd.subject_id)
    known = uow.get(DataSubject, data_subject_id(cmd.subject_id)) is not None
    if not known and not open_orders and not uow.sealer.knows(cmd.subject_id):
        raise NotFound("no such data subject: the ledger holds no key, order or lifecycle of it")
    subject = subject_for(cmd.subject_id, uow)
    uow.result.update(subject.request_erasure(uow.now, cmd.reference, open_orders))
    uow.add(subject)
