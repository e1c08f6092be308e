"""Closures: every ground names its clause; a closure after payment terminates a formed
contract and must refund everything and notify the user (ECL 49 para 2)."""

from __future__ import annotations

from typing import Any

from ledger.domain import codes
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.order import events as ev
from ledger.domain.order.base import OrderBase
from ledger.domain.order.vocabulary import SELLER_GROUNDS

# ground -> clause. The first group come from their own commands; the seller may close on
# the second group only, each with the evidence its clause needs.
CLOSURE_CLAUSES: dict[str, str] = {
    "user_cancel": "3.1.2",
    "payment_deadline": "3.1.3",
    "stock_shortage": "3.1.4",
    "mutual_termination": "3.1.2",
    "price_error_terminated": "3.1.7",
    "purchase_limit": "3.1.5",
    "abnormal_order": "3.1.6",
    "bad_address": "3.2.4(1)",
    "no_answer": "3.2.4(2)",
    "nobody_to_sign": "3.2.4(3)",
    "force_majeure": "3.2.4(4)",
    "delivery_refused": "3.2.3",
    "account_restricted": "6.1",
    "account_terminated": "6.2",
}
# 3.2.4: grounds (1), (3), (4) need a failed attempt recorded for that reason.
_ATTEMPT_GROUNDS = frozenset({"bad_address", "nobody_to_sign", "force_majeure"})
REQUIRED_UNANSWERED_CALLS = 2


class ClosureRules(OrderBase):
    def close(self, ctx: Ctx, ground: str, evidence: dict[str, Any]) -> None:
        clause = CLOSURE_CLAUSES[ground]
        formed = self.contract_formed
        self.emit(
            ev.OrderClosed,
            ctx,
            ground=ground,
            clause=clause,
            contract_formed=formed,
            evidence=evidence,
        )
        self.refund_everything(ctx, "closure")
        self.emit(ev.UserNotified, ctx, subject=f"order closed: {ground}", clause=clause)

    def check_seller_may_close(self, ground: str, evidence: dict[str, Any]) -> None:
        if ground not in SELLER_GROUNDS:
            raise RuleViolation(
                codes.CLOSURE_GROUND_NOT_ALLOWED,
                f"order {self.order_no}: the seller may not close on that ground",
                clause=CLOSURE_CLAUSES.get(ground, "3.1.7" if ground == "price_error" else ""),
            )
        self.check_open()
        self.check_not_delivered(CLOSURE_CLAUSES[ground])
        if ground == "no_answer" and self.unanswered_calls < REQUIRED_UNANSWERED_CALLS:
            raise RuleViolation(
                codes.TWO_CALLS_REQUIRED,
                f"order {self.order_no}: {self.unanswered_calls} unanswered call(s) recorded, "
                f"{REQUIRED_UNANSWERED_CALLS} needed",
            )
        if ground in _ATTEMPT_GROUNDS and ground not in self.failed_attempts:
            raise RuleViolation(
                codes.DELIVERY_FAILURE_NOT_RECORDED,
                f"order {self.order_no}: no failed delivery attempt for that reason",
                clause=CLOSURE_CLAUSES[ground],
            )
        if ground == "delivery_refused" and not self.refusals:
            raise RuleViolation(
                codes.REFUSAL_NOT_RECORDED, f"order {self.order_no}: no refusal recorded"
            )
        if ground == "purchase_limit" and not evidence.get("orders"):
            raise RuleViolation(
                codes.EVIDENCE_REQUIRED,
                f"order {self.order_no}: name the orders that together pass the limit",
                clause="3.1.5",
            )
        if ground == "abnormal_order":
            self.check_flag_allows_close(str(evidence.get("flag_id", "")))
        if self.price_error_open:
            raise RuleViolation(
                codes.PRICE_ERROR_NO_UNILATERAL_CLOSE,
                f"order {self.order_no}: resolve the price error with the user first",
            )

    def close_by_seller(self, ctx: Ctx, ground: str, evidence: dict[str, Any]) -> None:
        """A seller's closure on a ground its clause allows; account grounds are checked
        against the account's 6.2 disposition by the application before this runs."""
        self.check_seller_may_close(ground, evidence)
        self.close(ctx, ground, evidence)

    def notify_user(self, ctx: Ctx, subject: str, clause: str) -> None:
        self.emit(ev.UserNotified, ctx, subject=subject, clause=clause)
