"""Abnormal / resale orders (3.1.6): a flag records criterion, evidence and whether it was
automated; a person may refuse a decision made solely by automation (PIPL 24), so an
automated flag closes nothing until a person has confirmed it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.domain import codes
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.order import events as ev
from ledger.domain.order.base import OrderBase
from ledger.domain.order.vocabulary import FlagOutcome

CRITERIA = {
    1: "same user, several accounts, same product",
    2: "bulk purchase with the same or similar address, recipient, payment account or IP",
    3: "orders left unpaid or on delayed shipping to hold stock",
    4: "repeated refusals of delivery without good reason",
    5: "other orders judged abnormal by the platform's rules",
}


class AbnormalOrderRules(OrderBase):
    def raise_flag(
        self, ctx: Ctx, flag_id: str, criterion: int, evidence: dict[str, Any], automated: bool
    ) -> None:
        """A flag id names one flag on this order: raised again with the same criterion,
        evidence and automation it is a repeat; with others it is refused."""
        flag = self.flags.get(flag_id)
        facts = [criterion, evidence, automated]
        self.check_repeat(flag and flag["raised"], facts, codes.FLAG_EXISTS, "flag id")
        self.check_open()
        if criterion not in CRITERIA:
            raise RuleViolation(
                codes.UNKNOWN_CRITERION,
                f"order {self.order_no}: the criterion is not one of 3.1.6's",
            )
        if not evidence.get("orders") and not evidence.get("signals"):
            raise RuleViolation(
                codes.EVIDENCE_REQUIRED,
                f"order {self.order_no}: a flag needs its evidence",
                clause="3.1.6",
            )
        self.emit(
            ev.AbnormalOrderFlagRaised,
            ctx,
            flag_id=flag_id,
            criterion=criterion,
            evidence=evidence,
            automated=automated,
        )

    def review_flag(
        self,
        ctx: Ctx,
        flag_id: str,
        reviewer_id: str,
        outcome: FlagOutcome,
        note: str,
        same_note: Callable[[str], bool],
    ) -> None:
        """The human review PIPL art. 24 gives the user a right to; the same review again
        is a repeat, another review of a reviewed flag is refused. ``note`` is the sealed
        note (or ""); ``same_note`` tells whether a recorded note holds the same text."""
        flag = self.flags.get(flag_id)
        if flag is not None:
            facts = [reviewer_id, outcome]
            self.check_repeat(
                flag.get("reviewed"), facts, codes.FLAG_ALREADY_REVIEWED, "flag review", same_note
            )
        self.check_open()
        if flag is None:
            raise RuleViolation(codes.FLAG_NOT_FOUND, f"order {self.order_no}: no such flag")
        self.emit(
            ev.AbnormalOrderFlagReviewed,
            ctx,
            flag_id=flag_id,
            reviewer_id=reviewer_id,
            outcome=outcome,
            note=note,
        )

    def check_flag_allows_close(self, flag_id: str) -> None:
        flag = self.flags.get(flag_id)
        if flag is None:
            raise RuleViolation(codes.FLAG_NOT_FOUND, f"order {self.order_no}: no such flag")
        if flag["outcome"] == "dismissed":
            raise RuleViolation(
                codes.FLAG_DISMISSED, f"order {self.order_no}: that flag was dismissed"
            )
        if flag["automated"] and flag["outcome"] != "confirmed":
            raise RuleViolation(
                codes.FLAG_NOT_REVIEWED,
                f"order {self.order_no}: an automated flag needs a person's review",
            )
