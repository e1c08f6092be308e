"""Command handlers: the thin service layer between parsed commands and the domain.

Each handler runs every check before it changes anything, so a refusal writes nothing.
"""

from __future__ import annotations

from uuid import UUID

from ledger import commands as c
from ledger.domain import ids

# Importing the handler modules registers each handler under its command class.
from ledger.handlers import accounts, catalogue, lifecycle, orders, submission  # noqa: F401
from ledger.handlers.registry import HANDLERS, dispatch

__all__ = ["HANDLERS", "dispatch", "streams_read_by", "subject_stream"]


def streams_read_by(command: c.Command) -> list[UUID]:
    """The streams a command will load, as far as the command alone tells (a batch loads
    them with one query). Missing some is harmless: they are then loaded one by one."""
    found = [ids.command_record_id(command.command_id)]
    order_no = getattr(command, "order_no", None)
    if order_no is not None:
        found.append(ids.order_id(order_no))
    account_no = getattr(command, "account_no", None)
    if account_no is not None:
        found.append(ids.account_id(account_no))
    if isinstance(command, c.SubmitOrder):
        found += [ids.entitlement_id(code) for code in [*command.f_codes, *command.coupons]]
        found += [ids.limit_rule_id(line.sku) for line in command.lines]
        found += [ids.promotion_id(no) for no in command.promotion_nos]
        # Whether the account's data is restricted (PIPL 47 para 2) decides its linkage.
        found.append(ids.data_subject_id(command.account_no))
    elif isinstance(command, (c.IssueEntitlement, c.RestoreEntitlement)):
        found.append(ids.entitlement_id(command.code))
    elif isinstance(command, c.DefinePromotion):
        found.append(ids.promotion_id(command.promotion_no))
    elif isinstance(command, c.DefinePurchaseLimit):
        found.append(ids.limit_rule_id(command.sku))
    elif isinstance(command, c.ReceivePayment):
        found.append(ids.payment_claim_id(command.payment_id))
    elif isinstance(command, (c.PlaceLegalHold, c.ReleaseLegalHold, c.RequestErasure)):
        found.append(ids.data_subject_id(command.subject_id))
    if isinstance(command, c.TerminateAccount):
        found.append(ids.data_subject_id(command.account_no))
    return found


def subject_stream(command: c.Command) -> UUID:
    """The one stream a command is about: its version is the command's ``ETag`` in the API
    and what ``If-Match`` is checked against (RFC 9110 section 13.1.1). An order's command is
    about the order, an entitlement's about the F-code or coupon, an account decision about
    the account, a rule's about the promotion or the SKU's limit rule, a legal hold's about
    the data subject's lifecycle stream."""
    if isinstance(command, c.OrderCommand):
        return ids.order_id(command.order_no)
    if isinstance(command, (c.IssueEntitlement, c.RestoreEntitlement)):
        return ids.entitlement_id(command.code)
    if isinstance(command, c.DefinePromotion):
        return ids.promotion_id(command.promotion_no)
    if isinstance(command, c.DefinePurchaseLimit):
        return ids.limit_rule_id(command.sku)
    if isinstance(command, (c.RestrictAccount, c.TerminateAccount, c.DecideOpenOrder)):
        return ids.account_id(command.account_no)
    if isinstance(command, (c.PlaceLegalHold, c.ReleaseLegalHold, c.RequestErasure)):
        return ids.data_subject_id(command.subject_id)
    raise AssertionError(f"{command.type} names no subject stream")  # a test covers every type
