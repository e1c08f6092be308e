"""Price errors (3.1.7): honoured, adjusted with the user's consent, or ended by agreement.

The agreement lets the platform "communicate and handle" an error; it gives no right to
close unilaterally, so every outcome other than honouring the price needs the user's yes.
"""

from __future__ import annotations

from ledger.domain import codes
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.order import events as ev
from ledger.domain.order.base import OrderBase


class PriceErrorRules(OrderBase):
    def detect_price_error(
        self, ctx: Ctx, sku: str, displayed_price_fen: int, correct_price_fen: int, cause: str
    ) -> None:
        self.check_open()
        self.check_not_delivered("3.1.7")
        if sku not in {line["sku"] for line in self.lines}:
            raise RuleViolation(
                codes.SKU_NOT_IN_ORDER,
                f"order {self.order_no}: the SKU is not in the order",
                clause="3.1.7",
            )
        self.emit(
            ev.PriceErrorDetected,
            ctx,
            sku=sku,
            displayed_price_fen=displayed_price_fen,
            correct_price_fen=correct_price_fen,
            cause=cause,
        )

    def check_price_resolution(
        self, resolution: str, user_consented: bool, adjusted_total_fen: int | None
    ) -> None:
        self.check_open()
        if not self.price_error_open:
            raise RuleViolation(
                codes.NO_OPEN_PRICE_ERROR, f"order {self.order_no} has no open price error"
            )
        if resolution != "honoured" and not user_consented:
            raise RuleViolation(
                codes.USER_CONSENT_REQUIRED,
                f"order {self.order_no}: only the user's consent adjusts or terminates it",
            )
        if resolution == "adjusted" and (
            adjusted_total_fen is None or adjusted_total_fen < self.kept_fen
        ):
            raise RuleViolation(
                codes.ADJUSTED_TOTAL_INVALID,
                f"order {self.order_no}: adjusted total missing or below what was paid",
            )

    def resolve_price_error(
        self,
        ctx: Ctx,
        resolution: str,
        user_consented: bool,
        adjusted_total_fen: int | None = None,
    ) -> None:
        self.check_price_resolution(resolution, user_consented, adjusted_total_fen)
        self.emit(
            ev.PriceErrorResolved,
            ctx,
            resolution=resolution,
            user_consented=user_consented,
            adjusted_total_fen=adjusted_total_fen if resolution == "adjusted" else None,
        )
        if resolution == "terminated":
            self.close(ctx, "price_error_terminated", {})
        elif resolution == "adjusted":
            self.form_contract_if_paid(ctx)
