"""Purchase limits as data (3.1.5): a limit per SKU and period, counted per account or
across accounts linked by address, order IP, phone or recipient.

Each counter is a stream (SKU, rule version, period, signal), so two orders racing for
the last unit clash on the counter's version and one of them loses. A counter links
accounts directly (one shared signal); transitive groups are the projection's work.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from eventsourcing.domain import Aggregate

from ledger.domain import codes
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.ids import limit_counter_id, limit_rule_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.topics import topic

LINKAGE_KINDS = ("address", "ip", "phone", "recipient")
# The longest period a limit rule may count over (issue 11, item 5): an order carries linkage
# digests under its own year's key and the previous year's, so a period that began at most
# 365 days ago always started in a year whose key the order carries.
LINK_WINDOW_DAYS = 365


def linkage_key_of(kind: str, year: int) -> str:
    """The key an order's ``linkage`` maps a signal's digest under the key of ``year`` by."""
    return f"{kind}@{year:04d}"


class LimitTerms(TypedDict):
    """What a purchase-limit rule says, apart from its SKU: defined, then revised whole."""

    limit_qty: int
    period_days: int
    per_account: bool
    valid_from: datetime


@topic("limit/Event")
class LimitEvent(Aggregate.Event):
    class_version = 1
    command_id: str


@topic("limit/RuleDefined")
class LimitRuleDefined(LimitEvent, Aggregate.Created):
    sku: str
    limit_qty: int
    period_days: int
    per_account: bool
    valid_from: datetime

    def apply(self, agg: Any) -> None:
        agg.sku = self.sku
        agg.limit_qty = self.limit_qty
        agg.period_days = self.period_days
        agg.per_account = self.per_account
        agg.valid_from = self.valid_from
        agg.rule_version = 1


@topic("limit/RuleRevised")
class LimitRuleRevised(LimitEvent):
    limit_qty: int
    period_days: int
    per_account: bool
    valid_from: datetime

    def apply(self, agg: Any) -> None:
        agg.limit_qty = self.limit_qty
        agg.period_days = self.period_days
        agg.per_account = self.per_account
        agg.valid_from = self.valid_from
        agg.rule_version += 1


class PurchaseLimitRule(JournaledAggregate):
    TOPIC = "mall-ledger/limit-rule"
    Event = LimitEvent
    Created = LimitRuleDefined

    if TYPE_CHECKING:
        sku: str
        limit_qty: int
        period_days: int
        per_account: bool
        valid_from: datetime
        rule_version: int

    @classmethod
    def define(cls, ctx: Ctx, sku: str, terms: LimitTerms) -> PurchaseLimitRule:
        return cls._create(
            LimitRuleDefined,
            id=limit_rule_id(sku),
            timestamp=ctx.at,
            command_id=ctx.command_id,
            sku=sku,
            **terms,
        )

    def revise(self, ctx: Ctx, terms: LimitTerms) -> None:
        """A new version of the rule's terms; the SKU stays (3.1.5)."""
        self.trigger_event(LimitRuleRevised, timestamp=ctx.at, command_id=ctx.command_id, **terms)

    def period_start(self, at: datetime) -> datetime | None:
        """Start of the period ``at`` falls in, or None before the rule applies."""
        if at < self.valid_from:
            return None
        elapsed_periods = (at - self.valid_from).days // self.period_days
        return self.valid_from + timedelta(days=elapsed_periods * self.period_days)

    def signals(
        self, account_no: str, linkage: dict[str, str], period_start: datetime
    ) -> list[str]:
        """What the limit counts by: the account alone, or every linkage signal too, as its
        digest under the linkage key of the year the period started in (every order of the
        period carries that one: ``LINK_WINDOW_DAYS``)."""
        found = [f"account:{account_no}"]
        if not self.per_account:
            year = period_start.astimezone(UTC).year
            for kind in LINKAGE_KINDS:
                digest = linkage.get(linkage_key_of(kind, year))
                if digest is not None:
                    found.append(f"{kind}:{digest}")
        return found

    def counter_id(self, period_start: datetime, signal: str) -> Any:
        """Keyed by the period's start, not the rule version: raising a limit mid-period
        keeps what was already bought."""
        return limit_counter_id(self.sku, period_start.isoformat(), signal)


@topic("limit/CounterOpened")
class LimitCounterOpened(LimitEvent, Aggregate.Created):
    sku: str
    rule_version: int
    period_start: datetime
    signal: str

    def apply(self, agg: Any) -> None:
        agg.sku = self.sku
        agg.signal = self.signal
        agg.quantity = 0
        agg.counted = {}


@topic("limit/PurchaseCounted")
class PurchaseCounted(LimitEvent):
    order_no: str
    quantity: int

    def apply(self, agg: Any) -> None:
        agg.quantity += self.quantity
        agg.counted[self.order_no] = self.quantity


@topic("limit/PurchaseReleased")
class PurchaseReleased(LimitEvent):
    order_no: str
    quantity: int

    def apply(self, agg: Any) -> None:
        agg.quantity -= self.quantity
        del agg.counted[self.order_no]


class LimitCounter(JournaledAggregate):
    TOPIC = "mall-ledger/limit-counter"
    Event = LimitEvent
    Created = LimitCounterOpened

    if TYPE_CHECKING:
        sku: str
        signal: str
        quantity: int
        counted: dict[str, int]

    @classmethod
    def open(
        cls, ctx: Ctx, rule: PurchaseLimitRule, period_start: datetime, signal: str
    ) -> LimitCounter:
        return cls._create(
            LimitCounterOpened,
            id=rule.counter_id(period_start, signal),
            timestamp=ctx.at,
            command_id=ctx.command_id,
            sku=rule.sku,
            rule_version=rule.rule_version,
            period_start=period_start,
            signal=signal,
        )

    @property
    def links_accounts(self) -> bool:
        """Whether this counter counts by a linkage signal (a keyed hash of personal data),
        not by the account alone."""
        return not self.signal.startswith("account:")

    def check_room(
        self, order_no: str, quantity: int, limit_qty: int, withheld: Callable[[str], bool]
    ) -> None:
        """Refuse ``PURCHASE_LIMIT_EXCEEDED`` if ``quantity`` more would pass ``limit_qty``.
        On a linkage counter the orders ``withheld`` says are restricted (PIPL 47 para 2:
        stored, not processed, so not used for linkage) do not count."""
        counted = self.quantity
        if self.links_accounts:
            counted -= sum(q for order, q in self.counted.items() if withheld(order))
        if counted + quantity > limit_qty:
            kind = self.signal.split(":", 1)[0]
            raise RuleViolation(
                codes.PURCHASE_LIMIT_EXCEEDED,
                f"order {order_no}: a product limited to {limit_qty} per period; "
                f"{counted} already bought by accounts sharing this {kind}",
            )

    def count(self, ctx: Ctx, order_no: str, quantity: int) -> None:
        self.trigger_event(
            PurchaseCounted,
            timestamp=ctx.at,
            command_id=ctx.command_id,
            order_no=order_no,
            quantity=quantity,
        )

    def release(self, ctx: Ctx, order_no: str) -> None:
        """An order closed before its contract formed bought nothing (3.1.5 counts
        purchases): its quantity no longer counts toward the limit."""
        if order_no in self.counted:
            self.trigger_event(
                PurchaseReleased,
                timestamp=ctx.at,
                command_id=ctx.command_id,
                order_no=order_no,
                quantity=self.counted[order_no],
            )
