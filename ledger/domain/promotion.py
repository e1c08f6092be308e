"""Promotions as data (3.1.10): a validity window and a rule version, checked at submission."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from ledger.domain import codes
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.free_text import mark_clear_text
from ledger.domain.ids import promotion_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.topics import topic


@topic("promotion/Event")
class PromotionEvent(Aggregate.Event):
    class_version = 1
    command_id: str


def promotion_subject(promotion_no: str) -> str:
    """The data subject a promotion's free text is sealed under (issue 11, item 7): a key of
    its own per promotion, ``promotion#<stream id hex>``. The text is the mall's, typed by an
    admin, and names no account; but what a person types may identify someone (PIPL 4), and
    the ledger cannot tell whom, so the smallest thing it can shred without touching any other
    record (PIPL 47) is that promotion's text. ``#`` is never in an account number, so it names
    no account's key; the stream id, not the number, since a number may hold ``:``."""
    return f"promotion#{promotion_id(promotion_no).hex}"


def _description_v2(state: dict[str, Any]) -> None:
    """v1 held the description in clear; v2 holds it sealed under ``promotion_subject`` (or
    "")."""
    mark_clear_text(state, "description")


@topic("promotion/Defined")
class PromotionDefined(PromotionEvent, Aggregate.Created):
    """``description`` from version 2 on: "" or sealed under ``promotion_subject``, bound to
    the promotion number and field (version 1: clear text, read back ``clear:``-marked)."""

    class_version = 2
    upcast_v1_v2 = staticmethod(_description_v2)

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
    """``description`` as in ``PromotionDefined`` (version 2: sealed)."""

    class_version = 2
    upcast_v1_v2 = staticmethod(_description_v2)

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
