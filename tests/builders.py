"""Command builders for tests: realistic defaults, any field overridable by keyword."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count(1)


def cid(prefix: str = "cmd") -> str:
    return f"{prefix}-{next(_ids)}"


CONTACT = {
    "recipient_name": "王小明",
    "phone": "13912345678",
    "address": "上海市浦东新区世纪大道100号环球金融中心58楼",
    "ip": "101.226.33.7",
}


def own_contact(n: int, phone_prefix: str = "1380000000", **shared: str) -> dict[str, str]:
    """A contact of person ``n`` sharing nothing with another ``n``, except ``shared``."""
    own = {
        "recipient_name": f"买家{n}",
        "phone": f"{phone_prefix}{n}",
        "address": f"北京市海淀区中关村大街{n}号",
        "ip": f"10.0.0.{n}",
    }
    return {**own, **shared}


def submit(order_no: str, **over: Any) -> dict[str, Any]:
    cmd: dict[str, Any] = {
        "type": "submit_order",
        "command_id": cid("submit"),
        "order_no": order_no,
        "account_no": "acct-1",
        "seller_id": "xiaomi-self",
        "shipping_region": "CN-SH",
        "lines": [{"sku": "PHONE-14", "quantity": 1, "unit_price_fen": 399900}],
        "gifts": [],
        "contact": dict(CONTACT),
    }
    cmd.update(over)
    return cmd


def order_cmd(command_type: str, order_no: str, **fields: Any) -> dict[str, Any]:
    return {"type": command_type, "command_id": cid(command_type), "order_no": order_no, **fields}


def pay(
    order_no: str, amount_fen: int = 399900, method: str = "alipay", **over: Any
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "payment_id": cid("pay"),
        "method": method,
        "payer_account": "buyer@example.com",
        "amount_fen": amount_fen,
    }
    return order_cmd("receive_payment", order_no, **{**fields, **over})


def ship(order_no: str, **over: Any) -> dict[str, Any]:
    return order_cmd("ship_order", order_no, **{"carrier": "SF", "tracking_no": cid("SF"), **over})


def deliver(order_no: str, signer_relation: str = "self") -> dict[str, Any]:
    return order_cmd("deliver_order", order_no, signer_relation=signer_relation)


def issue(code: str, kind: str = "coupon", **over: Any) -> dict[str, Any]:
    cmd: dict[str, Any] = {
        "type": "issue_entitlement",
        "command_id": cid("issue"),
        "code": code,
        "kind": kind,
        "campaign": "double-11",
        "value_fen": 10000 if kind == "coupon" else 0,
    }
    if kind == "f_code":
        cmd["sku"] = "PHONE-14"
    cmd.update(over)
    return cmd


def other(command_type: str, **fields: Any) -> dict[str, Any]:
    return {"type": command_type, "command_id": cid(command_type), **fields}
