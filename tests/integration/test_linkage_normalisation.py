"""Look-alike contact details link accounts for purchase limits (3.1.5; issue 8, case 4).

A limit of one per 30 days across linked accounts: a second account whose recipient, phone,
address or IP differs from the first only by invisible characters, full-width forms, spaces,
case or a country code is the same person to the rule and is refused. On both backends.
"""

from __future__ import annotations

from typing import Any

import pytest

from ledger.application import Ledger
from ledger.domain.errors import NotFound
from tests import builders as b
from tests.checks import refused, run
from tests.fix_app import CLOCK_START

SKU = "PHONE-14"
FIRST = {
    "recipient_name": "张三",
    "phone": "13812345678",
    "address": "北京市朝阳区建国路88号",
    "ip": "192.0.2.1",
}
# Shares no signal with FIRST.
OTHER = {
    "recipient_name": "李四",
    "phone": "13900001111",
    "address": "上海市浦东新区世纪大道100号",
    "ip": "198.51.100.7",
}


def limit_one_per_thirty_days(ledger: Ledger) -> None:
    rule = {"sku": SKU, "limit_qty": 1, "period_days": 30, "valid_from": CLOCK_START.isoformat()}
    run(ledger, b.other("define_purchase_limit", **rule))


def order_of(order_no: str, account_no: str, contact: dict[str, str]) -> dict[str, Any]:
    line = {"sku": SKU, "quantity": 1, "unit_price_fen": 399900}
    return b.submit(order_no, account_no=account_no, lines=[line], contact=contact)


@pytest.mark.parametrize(
    "look_alike",
    [
        pytest.param({"recipient_name": "张\u200b三"}, id="recipient-with-zero-width-space"),
        pytest.param({"recipient_name": "张\u3000三"}, id="recipient-with-ideographic-space"),
        pytest.param({"recipient_name": "\ufeff张三\u2060"}, id="recipient-with-format-chars"),
        pytest.param({"phone": "+86 138-1234-5678"}, id="phone-with-country-code"),
        pytest.param({"phone": "0086 138 1234 5678"}, id="phone-with-0086"),
        pytest.param({"address": "北京市\u200b朝阳区建国路８８号"}, id="address-full-width"),
        pytest.param({"address": "北京市\u00a0朝阳区，建国路88号"}, id="address-with-nbsp"),
        pytest.param({"ip": "::ffff:192.0.2.1"}, id="ipv4-mapped-ip"),
    ],
)
def test_an_account_linked_by_a_look_alike_signal_is_refused_past_the_limit(
    ledger_app: Ledger, look_alike: dict[str, str]
) -> None:
    limit_one_per_thirty_days(ledger_app)
    run(ledger_app, order_of("A1", "acct-a", FIRST))

    refused(
        ledger_app,
        order_of("B1", "acct-b", {**OTHER, **look_alike}),
        "PURCHASE_LIMIT_EXCEEDED",
        "3.1.5",
    )
    with pytest.raises(NotFound):
        ledger_app.order("B1")


def test_an_account_with_only_different_signals_still_buys_its_own(ledger_app: Ledger) -> None:
    limit_one_per_thirty_days(ledger_app)
    run(ledger_app, order_of("A1", "acct-a", FIRST))

    result = run(ledger_app, order_of("B1", "acct-b", {**OTHER, "recipient_name": "张山"}))

    assert "limit/PurchaseCounted" in result.events


@pytest.mark.parametrize(
    ("field", "value"),
    [("recipient_name", "\u200b\u3000\u00a0"), ("address", "\u200b，。、（）--")],
)
def test_a_contact_field_with_nothing_visible_is_refused_naming_it(
    ledger_app: Ledger, field: str, value: str
) -> None:
    error = refused(
        ledger_app, order_of("B1", "acct-b", {**OTHER, field: value}), "INVALID_COMMAND", ""
    )

    assert error.as_dict()["field"] == f"submit_order.contact.{field}"
