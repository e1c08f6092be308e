"""F-codes and coupons (3.1.11): each used once; forfeited when its order is cancelled or
closed for any reason; only a coupon may come back, and only under a named rule.

The agreement's exception ("如小米商城有特殊规则") speaks of coupons alone, so an F-code
(a purchase qualification) is never restored: DOMAIN.md's wider wording is not followed.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from eventsourcing.domain import Aggregate

from ledger.domain import codes
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.free_text import mark_clear_text
from ledger.domain.ids import entitlement_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.topics import topic


@topic("entitlement/Event")
class EntitlementEvent(Aggregate.Event):
    class_version = 1
    command_id: str


@topic("entitlement/Issued")
class EntitlementIssued(EntitlementEvent, Aggregate.Created):
    code: str
    kind: str
    campaign: str
    sku: str | None
    value_fen: int
    holder_account: str | None
    valid_until: datetime | None

    def apply(self, agg: Any) -> None:
        agg.code = self.code
        agg.kind = self.kind
        agg.campaign = self.campaign
        agg.sku = self.sku
        agg.holder_account = self.holder_account
        agg.valid_until = self.valid_until
        agg.consumed_by = None
        agg.consumer_account = None  # the last to use it: kept after a restore
        agg.forfeited = False


@topic("entitlement/Consumed")
class EntitlementConsumed(EntitlementEvent):
    order_no: str
    account_no: str

    def apply(self, agg: Any) -> None:
        agg.consumed_by = self.order_no
        agg.consumer_account = self.account_no  # whose data a restore's rule may carry
        agg.forfeited = False


@topic("entitlement/Forfeited")
class EntitlementForfeited(EntitlementEvent):
    order_no: str
    ground: str

    def apply(self, agg: Any) -> None:
        agg.forfeited = True


@topic("entitlement/Restored")
class EntitlementRestored(EntitlementEvent):
    """The coupon given back under ``rule`` for ``order_no``. From version 2 on ``rule`` is
    the text a person typed sealed under the main key of the account whose order had used the
    coupon, bound to that order (issue 11, item 7), or the ledger's own rule name in clear
    (``7D art. 15`` for a no-reason return); version 1 text reads back ``clear:``-marked."""

    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """v1 held the rule in clear; v2 holds it sealed (or the ledger's own rule name)."""
        mark_clear_text(state, "rule")

    order_no: str
    rule: str

    def apply(self, agg: Any) -> None:
        agg.consumed_by = None
        agg.forfeited = False


# How messages name a kind: never by the code itself, which may be someone's data.
EntitlementKind = Literal["f_code", "coupon"]
KIND_NAMES: dict[str, str] = {"f_code": "F-code", "coupon": "coupon"}


class Entitlement(JournaledAggregate):
    TOPIC = "mall-ledger/entitlement"
    Event = EntitlementEvent
    Created = EntitlementIssued

    if TYPE_CHECKING:  # state set by the events; no class annotations (they make a dataclass)
        code: str
        kind: str
        sku: str | None
        holder_account: str | None
        valid_until: datetime | None
        consumed_by: str | None
        consumer_account: str | None
        forfeited: bool

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[self.kind]

    @classmethod
    def issue(
        cls,
        ctx: Ctx,
        *,
        code: str,
        kind: EntitlementKind,
        campaign: str,
        sku: str | None,
        value_fen: int,
        holder_account: str | None,
        valid_until: datetime | None,
    ) -> Entitlement:
        return cls._create(
            EntitlementIssued,
            id=entitlement_id(code),
            timestamp=ctx.at,
            command_id=ctx.command_id,
            code=code,
            kind=kind,
            campaign=campaign,
            sku=sku,
            value_fen=value_fen,
            holder_account=holder_account,
            valid_until=valid_until,
        )

    def check_consumable(self, ctx: Ctx, account_no: str, skus: set[str]) -> None:
        if self.consumed_by is not None:
            raise RuleViolation(
                codes.ENTITLEMENT_ALREADY_CONSUMED,
                f"the {self.kind_name} was used by order {self.consumed_by}",
            )
        if self.valid_until is not None and ctx.at > self.valid_until:
            raise RuleViolation(codes.ENTITLEMENT_EXPIRED, f"the {self.kind_name} has expired")
        if self.holder_account is not None and self.holder_account != account_no:
            raise RuleViolation(
                codes.ENTITLEMENT_NOT_HELD, f"the {self.kind_name} is another account's"
            )
        if self.kind == "f_code" and self.sku not in skus:
            raise RuleViolation(codes.F_CODE_WRONG_SKU, "the F-code is for another product")

    def consume(self, ctx: Ctx, order_no: str, account_no: str) -> None:
        self.trigger_event(
            EntitlementConsumed,
            timestamp=ctx.at,
            command_id=ctx.command_id,
            order_no=order_no,
            account_no=account_no,
        )

    def forfeit(self, ctx: Ctx, order_no: str, ground: str) -> None:
        """Cancelled or closed for any reason: the code stays used (3.1.11)."""
        assert self.consumed_by == order_no, "only the consuming order forfeits a code"
        self.trigger_event(
            EntitlementForfeited,
            timestamp=ctx.at,
            command_id=ctx.command_id,
            order_no=order_no,
            ground=ground,
        )

    def check_restorable(self, rule: str) -> None:
        if self.kind != "coupon":
            raise RuleViolation(
                codes.F_CODE_NOT_RESTORABLE,
                "the agreement's special rules restore coupons only, not F-codes",
            )
        if not rule.strip():
            raise RuleViolation(
                codes.RESTORE_RULE_REQUIRED, "name the special rule that restores the coupon"
            )
        if self.consumed_by is None:
            raise RuleViolation(codes.ENTITLEMENT_NOT_CONSUMED, "the coupon was never used")

    def restore(self, ctx: Ctx, rule: str, recorded_rule: str) -> None:
        """Give the coupon back under ``rule`` (as typed: checked), recorded as
        ``recorded_rule`` (sealed, or the ledger's own rule name)."""
        self.check_restorable(rule)
        self.trigger_event(
            EntitlementRestored,
            timestamp=ctx.at,
            command_id=ctx.command_id,
            order_no=self.consumed_by,
            rule=recorded_rule,
        )
