"""Account restriction and termination (6.1) and the 6.2 decision on open orders."""

from __future__ import annotations

from ledger import commands as c
from ledger.domain import codes
from ledger.domain.account import Account
from ledger.domain.errors import RuleViolation
from ledger.domain.ids import account_id, order_id
from ledger.domain.order.aggregate import Order
from ledger.handlers.lifecycle import restrict_cancelled_account
from ledger.handlers.registry import handles
from ledger.unit_of_work import UnitOfWork


def account_for(account_no: str, uow: UnitOfWork) -> Account:
    """The account's stream, or a new one; the caller adds it once its command succeeded."""
    existing = uow.get(Account, account_id(account_no))
    return existing or Account.register(uow.now, account_no)


@handles(c.RestrictAccount)
def restrict_account(cmd: c.RestrictAccount, uow: UnitOfWork) -> None:
    account = account_for(cmd.account_no, uow)
    policy = uow.policy
    account.restrict(
        uow.now,
        cmd.ground,
        cmd.evidence.model_dump(exclude_none=True),
        policy.refusal_threshold,
        policy.refusal_window_days,
    )
    uow.add(account)


@handles(c.TerminateAccount)
def terminate_account(cmd: c.TerminateAccount, uow: UnitOfWork) -> None:
    """Termination cancels the account (6.1): while a retention of its orders runs, its
    personal data is restricted (PIPL 47 para 2), recorded on the subject's stream."""
    account = account_for(cmd.account_no, uow)
    account.terminate(
        uow.now, cmd.ground, uow.policy.refusal_threshold, uow.policy.refusal_window_days
    )
    uow.add(account)
    restrict_cancelled_account(cmd.account_no, uow)


@handles(c.DecideOpenOrder)
def decide_open_order(cmd: c.DecideOpenOrder, uow: UnitOfWork) -> None:
    order = uow.get(Order, order_id(cmd.order_no))
    if order is None or order.account_no != cmd.account_no:
        raise RuleViolation(
            codes.ORDER_NOT_OF_ACCOUNT,
            f"order {cmd.order_no} is not an order of this account",
        )
    order.check_open()
    account = account_for(cmd.account_no, uow)
    account.decide_open_order(uow.now, cmd.order_no, cmd.disposition)
    uow.add(account)
