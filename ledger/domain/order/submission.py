"""What an order can check about itself at submission (3.1.2, 3.3.3, 3.3.2, 3.1.8)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypedDict

from ledger.domain import codes
from ledger.domain.errors import RuleViolation
from ledger.domain.regions import is_mainland

Json = dict[str, Any]


class Submission(TypedDict):
    """What a submitted order says, as checked here; ``Order.submit`` adds what the checks
    decide (the total due) and what is written only once they pass (sealed contact, counters)."""

    order_no: str
    account_no: str
    lines: list[Json]
    gifts: list[Json]
    promotions: list[Json]
    f_codes: list[str]
    coupons: list[str]
    purchase_type: Literal["consumer", "enterprise_group"]
    seller_id: str
    seller_kind: Literal["self_operated", "third_party"]
    shipping_region: str
    payment_deadline: datetime
    linkage: dict[str, str]


def line_total_fen(line: dict[str, Any]) -> int:
    return int(line["quantity"]) * int(line["unit_price_fen"]) - int(line["discount_fen"])


def check_submission(order_no: str, fields: Submission) -> int:
    """Refuse what no clause allows; return the amount due in fen."""
    if not is_mainland(fields["shipping_region"]):
        raise RuleViolation(
            codes.OUTSIDE_MAINLAND,
            f"order {order_no}: goods are sold and serviced in mainland China only",
        )
    for index, line in enumerate(fields["lines"]):
        if line["discount_fen"] > line["quantity"] * line["unit_price_fen"]:
            raise RuleViolation(
                codes.DISCOUNT_EXCEEDS_PRICE,
                f"order {order_no}: the discount on lines.{index} exceeds its price",
            )
    gift_ids = [g["gift_id"] for g in fields["gifts"]]
    if len(set(gift_ids)) != len(gift_ids):
        raise RuleViolation(codes.DUPLICATE_GIFT, f"order {order_no}: gift ids repeat")
    total_fen = sum(line_total_fen(line) for line in fields["lines"])
    if total_fen <= 0:
        raise RuleViolation(codes.NOTHING_TO_PAY, f"order {order_no}: total is {total_fen}")
    return total_fen
