"""Stock shortage (3.1.4): the user may cancel; if paid, exchange or refund by agreement."""

from __future__ import annotations

from ledger.domain import codes
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.order import events as ev
from ledger.domain.order.base import OrderBase


class ShortageRules(OrderBase):
    def declare_stock_shortage(self, ctx: Ctx, skus: list[str]) -> None:
        self.check_open()
        if self.shipped:
            raise RuleViolation(
                codes.ALREADY_SHIPPED,
                f"order {self.order_no} has shipped; no shortage",
                clause="3.1.4",
            )
        ordered = {line["sku"] for line in self.lines}
        unknown = sorted(set(skus) - ordered)
        if not skus or unknown:
            raise RuleViolation(
                codes.SKU_NOT_IN_ORDER,
                f"order {self.order_no}: a SKU named is not in the order",
                clause="3.1.4",
            )
        self.emit(ev.StockShortageDeclared, ctx, skus=sorted(skus))

    def resolve_stock_shortage(
        self, ctx: Ctx, resolution: str, exchange_sku: str | None = None
    ) -> None:
        """Once paid, the seller and user agree on an exchange or a refund (3.1.4)."""
        self.check_open()
        if not self.shortage_open:
            raise RuleViolation(
                codes.SHORTAGE_NOT_DECLARED, f"order {self.order_no} has no open shortage"
            )
        if resolution == "exchange" and not exchange_sku:
            raise RuleViolation(
                codes.EXCHANGE_SKU_REQUIRED, f"order {self.order_no}: name the other SKU"
            )
        self.emit(
            ev.StockShortageResolved,
            ctx,
            resolution=resolution,
            exchange_sku=exchange_sku if resolution == "exchange" else None,
        )
        if resolution == "refund":
            self.close(ctx, "stock_shortage", {})
