"""Entitlements, promotions and purchase-limit rules: rules kept as data, not code."""

from __future__ import annotations

from ledger import commands as c
from ledger.domain import codes
from ledger.domain.entitlement import Entitlement
from ledger.domain.errors import NotFound, RuleViolation
from ledger.domain.ids import entitlement_id, limit_rule_id, promotion_id
from ledger.domain.limits import PurchaseLimitRule
from ledger.domain.promotion import Promotion
from ledger.unit_of_work import Handler, UnitOfWork


def issue_entitlement(cmd: c.IssueEntitlement, uow: UnitOfWork) -> None:
    if uow.get(Entitlement, entitlement_id(cmd.code)) is not None:
        raise RuleViolation(codes.ENTITLEMENT_EXISTS, "the code was already issued")
    if cmd.kind == "f_code" and cmd.sku is None:
        raise RuleViolation(codes.F_CODE_NEEDS_SKU, "an F-code names its SKU")
    fields = cmd.model_dump(exclude={"type", "command_id"})
    uow.add(Entitlement.issue(uow.now, **fields))


def restore_entitlement(cmd: c.RestoreEntitlement, uow: UnitOfWork) -> None:
    entitlement = uow.get(Entitlement, entitlement_id(cmd.code))
    if entitlement is None:
        raise NotFound("no such code was issued")
    entitlement.check_restorable(cmd.rule)
    if not entitlement.forfeited:
        # A special rule gives back what a cancelled or closed order forfeited (3.1.11);
        # a code still held by a live order would otherwise be usable twice.
        raise RuleViolation(
            codes.ENTITLEMENT_NOT_FORFEITED,
            "the code is not forfeited by a cancelled or closed order",
        )
    entitlement.restore(uow.now, cmd.rule)


def define_promotion(cmd: c.DefinePromotion, uow: UnitOfWork) -> None:
    """A second definition of the same promotion is a revision: its rule version goes up."""
    promotion = uow.get(Promotion, promotion_id(cmd.promotion_no))
    if promotion is None:
        fields = cmd.model_dump(exclude={"type", "command_id"})
        uow.add(Promotion.define(uow.now, **fields))
    else:
        promotion.revise(uow.now, cmd.valid_from, cmd.valid_until, cmd.description)


def define_purchase_limit(cmd: c.DefinePurchaseLimit, uow: UnitOfWork) -> None:
    fields = cmd.model_dump(exclude={"type", "command_id"})
    rule = uow.get(PurchaseLimitRule, limit_rule_id(cmd.sku))
    if rule is None:
        uow.add(PurchaseLimitRule.define(uow.now, **fields))
    else:
        del fields["sku"]
        rule.revise(uow.now, **fields)


HANDLERS: dict[str, Handler] = {
    "issue_entitlement": issue_entitlement,
    "restore_entitlement": restore_entitlement,
    "define_promotion": define_promotion,
    "define_purchase_limit": define_purchase_limit,
}
