"""Commands with personal data in every position (issue 8, case 14), generated from the models.

A Chinese name, a mainland mobile and an address go into every field of every command (text,
integer and flag fields, nested ones included) and into unknown keys at the top level and in
every nested object. The documented identifiers (order number, command id) are left alone:
messages may name those. Shared by the application test and the ``ledger import`` test.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ledger.commands import COMMAND_CLASSES
from tests import builders as b
from tests.command_models import LEAVES, example, with_value

NAME = "张三丰"
PHONE = "13812345678"
ADDRESS = "北京市朝阳区建国路88号"
PERSONAL = (NAME, PHONE, ADDRESS)

# Text values: refused as malformed by most fields, and ``k…`` passes every identifier pattern,
# so it reaches the rules (an account number, a coupon code, a SKU, a method…).
TEXT_VALUES = (NAME, PHONE, ADDRESS, f"{NAME} {PHONE} {ADDRESS}", f"k{PHONE}")
DOCUMENTED_IDENTIFIERS = {("command_id",), ("order_no",)}
_ids = itertools.count(1)

# Identifiers that pass every pattern and carry a mobile number. A bare mobile number is no
# account number any more (issue 11: refused, see tests/unit/test_personal_fields.py).
ACCOUNT = f"M-{PHONE}"
SKU = f"SKU-{PHONE}"
COUPON, F_CODE = f"C-{PHONE}", f"F-{PHONE}"
METHOD = f"pay-{PHONE}"


def _objects(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Paths of every JSON object inside a command, the command itself first."""
    if isinstance(value, dict):
        yield path
        for key, item in value.items():
            yield from _objects(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _objects(item, (*path, index))


def _with_key(data: dict[str, Any], path: tuple[str | int, ...], key: str) -> dict[str, Any]:
    return with_value(data, (*path, key), 1)


def commands_with_personal_data(order_no: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where the data is, the command) for every position; order commands name ``order_no``."""
    for leaf in LEAVES:
        if leaf.path in DOCUMENTED_IDENTIFIERS:
            continue
        values: tuple[Any, ...] = TEXT_VALUES
        if leaf.kind is int:
            values = (int(PHONE), PHONE)
        elif leaf.kind is bool:
            values = (PHONE,)
        for value in values:
            yield (
                leaf.name,
                _for_order(with_value(example(leaf.command), leaf.path, value), order_no),
            )
    for command in COMMAND_CLASSES:
        data = _for_order(example(command), order_no)
        for path in _objects(data):
            for key in (f"tel_{PHONE}", f"zhang_san_{PHONE}", NAME):
                where = ".".join(str(p) for p in (data["type"], *path, key))
                yield where, _with_key(data, path, key)


def _for_order(data: dict[str, Any], order_no: str) -> dict[str, Any]:
    """Aimed at ``order_no``, with a command id of its own (a reused one is refused first)."""
    fresh = {**data, "command_id": f"pii-{next(_ids)}"}
    return {**fresh, "order_no": order_no} if "order_no" in data else fresh


def echoed(texts: list[str]) -> list[str]:
    """The personal values found in any of ``texts``."""
    return [value for value in PERSONAL for text in texts if value in text]


# Each step: a command, and the code it must be refused with (None: it must be accepted).
def rule_steps(valid_from: datetime) -> list[tuple[dict[str, Any], str | None]]:
    """Through the rules with personal data in the identifiers they check; from a fresh ledger."""
    line = {"sku": SKU, "quantity": 1, "unit_price_fen": 399900}
    limit = {"sku": SKU, "limit_qty": 1, "period_days": 30, "valid_from": valid_from.isoformat()}
    mine = {"account_no": ACCOUNT, "lines": [line]}
    stranger = {
        **b.CONTACT,
        "phone": "13900001111",
        "address": "上海市徐汇区漕溪北路1号",
        "ip": "198.51.100.9",
    }
    other_sku = {"sku": "OTHER", "quantity": 1, "unit_price_fen": 100}
    o1 = "O-1"
    return [
        (b.other("define_purchase_limit", **limit), None),
        (b.issue(COUPON, holder_account=ACCOUNT), None),
        (b.issue(COUPON), "ENTITLEMENT_EXISTS"),
        (b.issue(F_CODE, kind="f_code", sku=SKU), None),
        (b.issue(f"F2-{PHONE}", kind="f_code", sku=None), "F_CODE_NEEDS_SKU"),
        (b.issue(f"H-{PHONE}", holder_account=f"a-{PHONE}"), None),
        (b.issue(f"X-{PHONE}", valid_until="2020-01-01T00:00:00+08:00"), None),
        (
            b.submit(
                o1,
                **mine,
                coupons=[COUPON],
                f_codes=[F_CODE],
                gifts=[{"gift_id": f"G-{PHONE}", "sku": f"GS-{PHONE}", "price_fen": 100}],
            ),
            None,
        ),
        (b.submit("O-2", **mine), "PURCHASE_LIMIT_EXCEEDED"),
        (b.submit("O-3", lines=[other_sku], coupons=[COUPON]), "ENTITLEMENT_ALREADY_CONSUMED"),
        (b.submit("O-3", lines=[other_sku], coupons=[f"H-{PHONE}"]), "ENTITLEMENT_NOT_HELD"),
        (b.submit("O-3", lines=[other_sku], coupons=[f"X-{PHONE}"]), "ENTITLEMENT_EXPIRED"),
        (b.submit("O-3", lines=[other_sku], f_codes=[F_CODE]), "ENTITLEMENT_ALREADY_CONSUMED"),
        (b.submit("O-3", lines=[other_sku], coupons=[f"N-{PHONE}"]), "ENTITLEMENT_NOT_FOUND"),
        (b.submit("O-3", lines=[other_sku], promotion_nos=[f"P-{PHONE}"]), "PROMOTION_NOT_FOUND"),
        (
            b.submit(
                "O-3",
                lines=[{**other_sku, "sku": f"D-{PHONE}", "discount_fen": 101}],
                contact=stranger,
            ),
            "DISCOUNT_EXCEEDS_PRICE",
        ),
        (b.other("restore_entitlement", code=F_CODE, rule="r"), "F_CODE_NOT_RESTORABLE"),
        (b.other("restore_entitlement", code=f"N-{PHONE}", rule="r"), "NOT_FOUND"),
        (b.other("restore_entitlement", code=COUPON, rule="r"), "ENTITLEMENT_NOT_FORFEITED"),
        (b.pay(o1, amount_fen=399901, method=METHOD, payer_account=NAME), "OVERPAYMENT"),
        (b.pay(o1, method=METHOD, payer_account=NAME), None),
        (b.order_cmd("declare_stock_shortage", o1, skus=[f"Y-{PHONE}"]), "SKU_NOT_IN_ORDER"),
        (
            b.order_cmd(
                "detect_price_error",
                o1,
                sku=f"Y-{PHONE}",
                displayed_price_fen=1,
                correct_price_fen=2,
                cause=NAME,
            ),
            "SKU_NOT_IN_ORDER",
        ),
        (
            b.order_cmd(
                "initiate_refund", o1, method=METHOD, amount_fen=10**9, purpose="price_adjustment"
            ),
            "OVER_REFUND",
        ),
        (
            b.order_cmd(
                "initiate_refund",
                o1,
                method=METHOD,
                amount_fen=1,
                consent_id=f"K-{PHONE}",
                purpose="price_adjustment",
            ),
            "REFUND_DESTINATION_NOT_CONSENTED",
        ),
        (b.order_cmd("complete_refund", o1, refund_id=f"R-{PHONE}"), "REFUND_NOT_PENDING"),
        (
            b.order_cmd(
                "raise_flag",
                o1,
                flag_id=f"FL-{PHONE}",
                criterion=1,
                evidence={"signals": [PHONE]},
                automated=True,
            ),
            None,
        ),
        (
            b.order_cmd(
                "raise_flag",
                o1,
                flag_id=f"FL-{PHONE}",
                criterion=2,  # other facts: the same ones again would be a repeat
                evidence={"signals": [PHONE]},
                automated=True,
            ),
            "FLAG_EXISTS",
        ),
        (
            b.order_cmd(
                "review_flag", o1, flag_id=f"NF-{PHONE}", reviewer_id=PHONE, outcome="dismissed"
            ),
            "FLAG_NOT_FOUND",
        ),
        (
            b.order_cmd(
                "close_order", o1, ground="abnormal_order", evidence={"flag_id": f"FL-{PHONE}"}
            ),
            "FLAG_NOT_REVIEWED",
        ),
        (
            b.order_cmd(
                "close_order", o1, ground="abnormal_order", evidence={"flag_id": f"NF-{PHONE}"}
            ),
            "FLAG_NOT_FOUND",
        ),
        (b.order_cmd("ship_order", o1, carrier=f"SF-{PHONE}", tracking_no=f"T-{PHONE}"), None),
        (b.deliver(o1, signer_relation=f"S-{PHONE}"), "SIGNER_NOT_AUTHORISED"),
        (b.deliver(o1), None),
        (b.order_cmd("receive_return", o1, return_id=f"RT-{PHONE}"), "NO_OPEN_RETURN"),
        (b.other("restrict_account", account_no=ACCOUNT, ground="6.1(1)"), None),
        (
            b.other("restrict_account", account_no=ACCOUNT, ground="6.1(1)"),
            "ACCOUNT_ALREADY_RESTRICTED",
        ),
        (b.submit("O-4", account_no=ACCOUNT, lines=[other_sku]), "ACCOUNT_RESTRICTED"),
        (
            b.other("decide_open_order", account_no=f"a-{PHONE}", order_no=o1, disposition="close"),
            "ORDER_NOT_OF_ACCOUNT",
        ),
        (
            b.other("terminate_account", account_no=f"a-{PHONE}", ground="6.1(5)"),
            "REFUSAL_THRESHOLD_NOT_MET",
        ),
    ]
