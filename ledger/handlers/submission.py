"""Submitting an order: the checks that reach beyond the order's own stream.

Account standing (6.1), promotions in their window (3.1.10), F-codes and coupons unused
(3.1.11), purchase limits across linked accounts (3.1.5); then the order, the consumed
codes and the limit counters are written in one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

from ledger.commands import SubmitOrder
from ledger.domain import codes
from ledger.domain.account import Account
from ledger.domain.data_subject import DataSubject
from ledger.domain.entitlement import KIND_NAMES, Entitlement
from ledger.domain.errors import InvalidCommand, RuleViolation
from ledger.domain.ids import (
    account_id,
    data_subject_id,
    entitlement_id,
    limit_rule_id,
    order_id,
    promotion_id,
)
from ledger.domain.limits import LimitCounter, PurchaseLimitRule
from ledger.domain.order.aggregate import Order
from ledger.domain.order.submission import Submission, check_submission
from ledger.domain.promotion import Promotion
from ledger.handlers.registry import handles
from ledger.keystore import DIRECT, MAIN
from ledger.unit_of_work import UnitOfWork

PERSONAL_FIELDS = ("recipient_name", "phone", "address", "ip")
# The direct identifiers (issue 11, item 3): sealed under the subject's direct-identifier key,
# so de-identification can destroy them while the IP (main key) stays for audit.
DIRECT_IDENTIFIERS = ("recipient_name", "phone", "address")
LINKAGE_OF = {"address": "address", "ip": "ip", "phone": "phone", "recipient": "recipient_name"}


@handles(SubmitOrder)
def submit_order(cmd: SubmitOrder, uow: UnitOfWork) -> None:
    ctx = uow.now
    if uow.get(Order, order_id(cmd.order_no)) is not None:
        raise RuleViolation(codes.ORDER_EXISTS, f"order {cmd.order_no} was already submitted")
    account = uow.get(Account, account_id(cmd.account_no))
    if account is not None:
        account.check_may_order()
    promotions = _active_promotions(cmd, uow)
    entitlements = _consumable_entitlements(cmd, uow)
    linkage = _linkage(cmd, uow)
    counters = _limit_counters(cmd, uow, linkage)
    submission = _submission(cmd, uow, promotions, linkage)
    total_due_fen = check_submission(cmd.order_no, submission)
    for written in [*entitlements, *(counter for counter, _ in counters)]:
        written.check_time_forward(ctx.at)  # as their events will, but before the key below
    # Every check passed: from here on only changes. Sealing comes last because it may
    # create the subject's key, a write a refused submission must not leave behind.
    order = Order.submit(
        ctx,
        submission,
        total_due_fen=total_due_fen,
        contact=_sealed_contact(cmd, uow),
        limit_counters=[str(counter.id) for counter, _ in counters],
    )
    uow.add(order)
    for entitlement in entitlements:
        entitlement.consume(ctx, cmd.order_no, cmd.account_no)
    for counter, quantity in counters:
        counter.count(ctx, cmd.order_no, quantity)
        uow.add(counter)


def _active_promotions(cmd: SubmitOrder, uow: UnitOfWork) -> list[dict[str, Any]]:
    found = []
    for index, promotion_no in enumerate(cmd.promotion_nos):
        promotion = uow.get(Promotion, promotion_id(promotion_no))
        if promotion is None:
            raise RuleViolation(
                codes.PROMOTION_NOT_FOUND,
                f"order {cmd.order_no}: promotion_nos.{index} is not a defined promotion",
            )
        promotion.check_active(uow.now.at)
        found.append({"promotion_no": promotion_no, "rule_version": promotion.rule_version})
    return found


def _consumable_entitlements(cmd: SubmitOrder, uow: UnitOfWork) -> list[Entitlement]:
    used = [*cmd.f_codes, *cmd.coupons]
    if len(set(used)) != len(used):
        raise RuleViolation(
            codes.ENTITLEMENT_ALREADY_CONSUMED, f"order {cmd.order_no} uses a code twice"
        )
    skus = {line.sku for line in cmd.lines}
    found = []
    wanted = [(code, "f_code", "f_codes", i) for i, code in enumerate(cmd.f_codes)] + [
        (code, "coupon", "coupons", i) for i, code in enumerate(cmd.coupons)
    ]
    for code, kind, field, index in wanted:
        entitlement = uow.get(Entitlement, entitlement_id(code))
        if entitlement is None or entitlement.kind != kind:
            raise RuleViolation(
                codes.ENTITLEMENT_NOT_FOUND,
                f"order {cmd.order_no}: {field}.{index} is not an issued {KIND_NAMES[kind]}",
            )
        entitlement.check_consumable(uow.now, cmd.account_no, skus)
        found.append(entitlement)
    return found


def _linkage(cmd: SubmitOrder, uow: UnitOfWork) -> dict[str, str]:
    """Keyed hashes of the normalised signals 3.1.5 links accounts by, under this year's
    linkage key and last year's (``<kind>@<year>``: ledger/sealing.py ``link_hashes``).

    Raises InvalidCommand naming the contact field that normalises to nothing (only
    invisible characters or punctuation): it would link every such order."""
    contact = cmd.contact.model_dump()
    hashes: dict[str, str] = {}
    year = uow.now.at.astimezone(UTC).year
    for kind, name in LINKAGE_OF.items():
        try:
            hashes.update(uow.sealer.link_hashes(kind, contact[name], year))
        except InvalidCommand:
            rule = "must hold visible characters beyond spaces and punctuation"
            raise InvalidCommand(f"{cmd.type}.contact.{name}", rule) from None
    return hashes


def _limit_counters(
    cmd: SubmitOrder, uow: UnitOfWork, linkage: dict[str, str]
) -> list[tuple[LimitCounter, int]]:
    quantities: Counter[str] = Counter()
    for line in cmd.lines:
        quantities[line.sku] += line.quantity
    counters = []
    withheld = _restricted_order_check(uow)
    # A subject restricted now (PIPL 47 para 2) is not linked: its own order counts on its
    # account alone, and its earlier orders do not count on others' linkage counters.
    if withheld(cmd.order_no, cmd.account_no):
        linkage = {}
    for sku, quantity in sorted(quantities.items()):
        rule = uow.get(PurchaseLimitRule, limit_rule_id(sku))
        period = rule.period_start(uow.now.at) if rule is not None else None
        if rule is None or period is None:
            continue
        for signal in rule.signals(cmd.account_no, linkage, period):
            counter = uow.get(LimitCounter, rule.counter_id(period, signal))
            if counter is None:
                counter = LimitCounter.open(uow.now, rule, period, signal)
            counter.check_room(cmd.order_no, quantity, rule.limit_qty, withheld)
            counters.append((counter, quantity))
    return counters


def _restricted_order_check(uow: UnitOfWork) -> Callable[..., bool]:
    """``withheld(order_no, account_no=None)``: is that order's personal data restricted now
    (``DataSubject.restricts``, PIPL 47 para 2: kept, not processed, so not used for
    linkage)? The account is read from the order when not given. Streams are read through
    the unit of work, so a restriction saved meanwhile makes the submission clash."""
    at = uow.now.at

    def withheld(order_no: str, account_no: str | None = None) -> bool:
        if account_no is None:
            order = uow.get(Order, order_id(order_no))
            if order is None:
                return False
            account_no = order.account_no
        subject = uow.get(DataSubject, data_subject_id(account_no))
        return subject is not None and subject.restricts(order_no, at)

    return withheld


def _submission(
    cmd: SubmitOrder,
    uow: UnitOfWork,
    promotions: list[dict[str, Any]],
    linkage: dict[str, str],
) -> Submission:
    return Submission(
        order_no=cmd.order_no,
        account_no=cmd.account_no,
        lines=[line.model_dump() for line in cmd.lines],
        gifts=[gift.model_dump() for gift in cmd.gifts],
        promotions=promotions,
        f_codes=list(cmd.f_codes),
        coupons=list(cmd.coupons),
        purchase_type=cmd.purchase_type,
        seller_id=cmd.seller_id,
        seller_kind=cmd.seller_kind,
        shipping_region=cmd.shipping_region,
        payment_deadline=uow.now.at + timedelta(minutes=uow.policy.payment_deadline_min),
        linkage=linkage,
    )


def _sealed_contact(cmd: SubmitOrder, uow: UnitOfWork) -> dict[str, str]:
    """Each contact field bound to this order (its stream) and field name; the direct
    identifiers under the subject's direct-identifier key, the IP under its main key."""
    contact = cmd.contact.model_dump()
    direct = {name: contact[name] for name in DIRECT_IDENTIFIERS}
    main = {name: contact[name] for name in PERSONAL_FIELDS if name not in direct}
    sealer, stream = uow.sealer, cmd.order_no
    sealed = sealer.seal_many(cmd.account_no, direct, stream=stream, kind=DIRECT)
    sealed.update(sealer.seal_many(cmd.account_no, main, stream=stream, kind=MAIN))
    return {name: sealed[name] for name in PERSONAL_FIELDS}
