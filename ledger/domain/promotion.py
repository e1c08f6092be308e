"""Promotions as data (3.1.10): a validity window and a rule version, checked at submission."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from ledger.domain import codes
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.ids import promotion_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.topics import topic


@topic("promotion/Event")
class PromotionEvent(Aggregate.Event):
    class_version = 1
    command_id: str


@topic("promotion/Defined")
class PromotionDefined(PromotionEvent, Aggregate.Created):
    promotion_no: str
    valid_from: datetime
    valid_until: datetime
    description: str

    def apply(self, agg: Any) -> None:
        agg.promotion_no = self.promotion_no
        agg.valid_from = self.valid_from
        agg.valid_until = self.valid_until
        agg.rule_version = 1


@topic("promotion/Revised")
class PromotionRevised(PromotionEvent):
    valid_from: datetime
    valid_until: datetime
    description: str

    def apply(self, agg: Any) -> None:
        agg.valid_from = self.valid_from
        agg.valid_until = self.valid_until
        agg.rule_version += 1


class Promotion(JournaledAggregate):
    TOPIC = "mall-ledger/promotion"
    Event = PromotionEvent
    Created = PromotionDefined

    if TYPE_CHECKING:
        promotion_no: str
        valid_from: datetime
        valid_until: datetime
        rule_version: int

    @classmethod
    def define(
        cls,
        ctx: Ctx,
        promotion_no: str,
        valid_from: datetime,
        valid_until: datetime,
        description: str,
    ) -> Promotion:
        check_window(valid_from, valid_until)
        return cls._create(
            PromotionDefined,
            id=promotion_id(promotion_no),
            timestamp=ctx.at,
            command_id=ctx.command_id,
            promotion_no=promotion_no,
            valid_from=valid_from,
            valid_until=valid_until,
            description=description,
        )

    def revise(
        self, ctx: Ctx, valid_from: datetime, valid_until: datetime, description: str
    ) -> None:
        check_window(valid_from, valid_until)
        self.trigger_event(
            PromotionRevised,
            timestamp=ctx.at,
            command_id=ctx.command_id,
            valid_from=valid_from,
            valid_until=valid_until,
            description=description,
        )

    def check_active(self, at: datetime) -> None:
        if not self.valid_from <= at < self.valid_until:
            raise RuleViolation(
                codes.PROMOTION_NOT_ACTIVE,
                f"the promotion runs {self.valid_from.isoformat()} to "
                f"{self.valid_until.isoformat()}",
            )


def check_window(valid_from: datetime, valid_until: datetime) -> None:
    if valid_until <= valid_from:
        raise RuleViolation(codes.EMPTY_VALIDITY_WINDOW, "valid_until must follow valid_from")
