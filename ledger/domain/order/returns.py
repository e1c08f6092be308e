"""Returns and after-sales: seven-day no-reason returns (CPL 25, 7D), group purchases
(3.3.2), mainland only (3.3.3), gifts back or paid for (3.1.8), refund within 7 days of
receipt (7D art. 14), coupons back per policy (7D art. 15)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ledger.domain import codes
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.order import events as ev
from ledger.domain.order.base import OrderBase
from ledger.domain.order.refunds import REFUND_DUE_DAYS
from ledger.domain.order.vocabulary import ReturnKind
from ledger.domain.regions import is_mainland


class ReturnRules(OrderBase):
    def check_return_step(self, return_id: str, step: str, facts: list[Any]) -> None:
        """A return id names one return on this order: a step of it stated again with the
        same facts is a repeat; with others it is refused."""
        steps = self.returns.get(return_id, {})
        self.check_repeat(steps.get(step), facts, codes.RETURN_ID_REUSED, "return id")

    def check_return_allowed(self, ctx: Ctx, kind: ReturnKind, service_region: str) -> None:
        """After completion only a quality return (an after-sales case, CPL 24) may open;
        a no-reason one is refused ``TRANSACTION_ALREADY_COMPLETED`` (its window ended)."""
        self.check_open()
        if kind != "quality":
            self.check_not_completed()
        if not self.is_delivered:
            raise RuleViolation(
                codes.NOT_DELIVERED, f"order {self.order_no} has not been delivered"
            )
        if not is_mainland(service_region):
            raise RuleViolation(
                codes.OUTSIDE_MAINLAND,
                f"order {self.order_no}: after-sales service is for mainland China only",
            )
        if self.open_return is not None or self.returns_done:
            raise RuleViolation(
                codes.RETURN_ALREADY_OPEN, f"order {self.order_no} already has a return"
            )
        if kind == "no_reason":
            self.check_no_reason_return(ctx)

    def check_no_reason_return(self, ctx: Ctx) -> None:
        if self.purchase_type != "consumer":
            raise RuleViolation(
                codes.GROUP_PURCHASE_NO_REASON_RETURN,
                f"order {self.order_no} is a group purchase: no seven-day no-reason return",
            )
        excluded = sorted({ln["sku"] for ln in self.lines if ln.get("no_reason_exclusion")})
        if excluded:
            raise RuleViolation(
                codes.GOODS_EXCLUDED_FROM_NO_REASON_RETURN,
                f"order {self.order_no}: {len(excluded)} of its goods are excluded",
            )
        assert self.return_deadline is not None, "consumer deliveries always set the window"
        if ctx.at >= self.return_deadline:
            raise RuleViolation(
                codes.RETURN_WINDOW_CLOSED,
                f"order {self.order_no}: the seven-day window ended "
                f"{self.return_deadline.isoformat()}",
            )

    def request_return(
        self,
        ctx: Ctx,
        return_id: str,
        kind: ReturnKind,
        service_region: str,
        visible_damage_claimed: bool,
    ) -> None:
        """A quality return stays open after signing (CPL 24, CC 497), also after the
        transaction completed: it then reopens the transaction (ECL 31: completion moves to
        the case's end). A claim of visible damage is recorded with the fact that the
        appearance was accepted (3.2.3)."""
        facts = [kind, service_region, visible_damage_claimed]
        self.check_return_step(return_id, "requested", facts)
        self.check_return_allowed(ctx, kind, service_region)
        if self.completed_at is not None:
            self.reopen_for_case(ctx, return_id)
        self.emit(
            ev.ReturnRequested,
            ctx,
            return_id=return_id,
            kind=kind,
            service_region=service_region,
            visible_damage_claimed=visible_damage_claimed,
            appearance_accepted_at_signing=True,
            shipping_paid_by="seller" if kind == "quality" else "user",
        )

    def check_open_return(self, return_id: str) -> dict[str, Any]:
        self.check_open()
        current = self.open_return
        if current is None or current["return_id"] != return_id:
            raise RuleViolation(
                codes.NO_OPEN_RETURN, f"order {self.order_no}: no open return of that id"
            )
        return current

    def receive_return(self, ctx: Ctx, return_id: str) -> None:
        self.check_return_step(return_id, "received", [])
        if self.check_open_return(return_id)["received"]:
            raise RuleViolation(
                codes.RETURN_ALREADY_RECEIVED, f"order {self.order_no}: already received"
            )
        due = ctx.at + timedelta(days=REFUND_DUE_DAYS)
        self.emit(ev.ReturnReceived, ctx, return_id=return_id, refund_due_by=due)

    def inspect_return(
        self, ctx: Ctx, return_id: str, gifts_returned: list[str], coupon_policy: str
    ) -> None:
        """A gift not returned is paid for at its stated price (3.1.8), kept from the refund."""
        self.check_return_step(return_id, "inspected", sorted(gifts_returned))
        current = self.check_open_return(return_id)
        if not current["received"]:
            raise RuleViolation(
                codes.RETURN_NOT_RECEIVED, f"order {self.order_no}: goods not received"
            )
        gift_ids = [g["gift_id"] for g in self.gifts]
        unknown = sorted(set(gifts_returned) - set(gift_ids))
        if unknown:
            raise RuleViolation(
                codes.GIFT_NOT_IN_ORDER,
                f"order {self.order_no}: a gift named is not in the order",
            )
        missing = [g for g in self.gifts if g["gift_id"] not in set(gifts_returned)]
        self.emit(
            ev.ReturnInspected,
            ctx,
            return_id=return_id,
            gifts_returned=sorted(gifts_returned),
            gifts_missing=[g["gift_id"] for g in missing],
            coupon_policy=coupon_policy,
        )
        for gift in missing:
            self.emit(
                ev.GiftPriceCharged, ctx, gift_id=gift["gift_id"], price_fen=gift["price_fen"]
            )
        withheld_fen = sum(g["price_fen"] for g in missing)
        self.refund_everything(
            ctx, "return", withheld_fen=withheld_fen, due_by=current["refund_due_by"]
        )
