"""Entitlements, promotions and purchase-limit rules: rules kept as data, not code."""

from __future__ import annotations

from ledger import commands as c
from ledger.domain import codes
from ledger.domain.entitlement import Entitlement
from ledger.domain.errors import NotFound, RuleViolation
from ledger.domain.ids import entitlement_id, limit_rule_id, promotion_id
from ledger.domain.limits import LimitTerms, PurchaseLimitRule
from ledger.domain.promotion import Promotion, check_window, promotion_subject
from ledger.handlers.free_text import seal_text
from ledger.handlers.registry import handles
from ledger.unit_of_work import UnitOfWork


@handles(c.IssueEntitlement)
def issue_entitlement(cmd: c.IssueEntitlement, uow: UnitOfWork) -> None:
    if uow.get(Entitlement, entitlement_id(cmd.code)) is not None:
        raise RuleViolation(codes.ENTITLEMENT_EXISTS, "the code was already issued")
    if cmd.kind == "f_code" and cmd.sku is None:
        raise RuleViolation(codes.F_CODE_NEEDS_SKU, "an F-code names its SKU")
    uow.add(
        Entitlement.issue(
            uow.now,
            code=cmd.code,
            kind=cmd.kind,
            campaign=cmd.campaign,
            sku=cmd.sku,
            value_fen=cmd.value_fen,
            holder_account=cmd.holder_account,
            valid_until=cmd.valid_until,
        )
    )


@handles(c.RestoreEntitlement)
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
    # The rule's text may carry data of the person whose order used the coupon (issue 11,
    # item 7): sealed under that account's main key, bound to that order.
    assert entitlement.consumed_by is not None and entitlement.consumer_account is not None
    sealed = seal_text(
        uow.sealer, entitlement.consumer_account, entitlement.consumed_by, "rule", cmd.rule
    )
    entitlement.restore(uow.now, cmd.rule, sealed)


@handles(c.DefinePromotion)
def define_promotion(cmd: c.DefinePromotion, uow: UnitOfWork) -> None:
    """A second definition of the same promotion is a revision: its rule version goes up."""
    promotion = uow.get(Promotion, promotion_id(cmd.promotion_no))
    check_window(cmd.valid_from, cmd.valid_until)  # before a key is made for its text
    description = seal_text(
        uow.sealer,
        promotion_subject(cmd.promotion_no),
        cmd.promotion_no,
        "description",
        cmd.description,
    )
    if promotion is None:
        uow.add(
            Promotion.define(
                uow.now, cmd.promotion_no, cmd.valid_from, cmd.valid_until, description
            )
        )
    else:
        promotion.revise(uow.now, cmd.valid_from, cmd.valid_until, description)


@handles(c.DefinePurchaseLimit)
def define_purchase_limit(cmd: c.DefinePurchaseLimit, uow: UnitOfWork) -> None:
    terms = LimitTerms(
        limit_qty=cmd.limit_qty,
        period_days=cmd.period_days,
        per_account=cmd.per_account,
        valid_from=cmd.valid_from,
    )
    rule = uow.get(PurchaseLimitRule, limit_rule_id(cmd.sku))
    if rule is None:
        uow.add(PurchaseLimitRule.define(uow.now, cmd.sku, terms))
    else:
        rule.revise(uow.now, terms)
