"""Command parsing (ledger/commands.py): bad input is refused with InvalidCommand naming the
field and the rule it breaks, and the error never repeats the input value (personal data
must not reach logs or HTTP problem bodies through an error message)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.commands import (
    COMMAND_TYPES,
    ISO_MOMENT_RULE,
    CloseOrder,
    RequestReturn,
    SubmitOrder,
    command_schema,
    parse_command,
)
from ledger.domain.errors import InvalidCommand, LedgerError
from tests import builders as b
from tests.command_models import LEAVES, example, with_value

PHONE = "13912345678"
NAME = "王小明"


def invalid(data: Any) -> InvalidCommand:
    with pytest.raises(InvalidCommand) as caught:
        parse_command(data)
    return caught.value


def with_line(**line: Any) -> dict[str, Any]:
    return b.submit("O-1", lines=[{"sku": "PHONE-14", "quantity": 1, "unit_price_fen": 1, **line}])


def with_contact(**contact: Any) -> dict[str, Any]:
    return b.submit("O-1", contact={**b.CONTACT, **contact})


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def request_return(**over: Any) -> dict[str, Any]:
    base = b.order_cmd("request_return", "O-1", return_id="r1", service_region="CN-SH")
    return {**base, "kind": "no_reason", **over}


# -- valid input -------------------------------------------------------------------------------
def test_a_valid_submission_parses_into_its_command_type_with_defaults() -> None:
    command = parse_command(b.submit("O-1"))

    assert isinstance(command, SubmitOrder)
    assert command.purchase_type == "consumer"
    assert command.lines[0].discount_fen == 0
    assert command.lines[0].no_reason_exclusion is None


def test_a_parsed_command_is_returned_as_it_is() -> None:
    command = parse_command(b.order_cmd("close_order", "O-1", ground="no_answer"))

    assert isinstance(command, CloseOrder)
    assert parse_command(command) is command


def test_every_command_type_is_known() -> None:
    assert "submit_order" in COMMAND_TYPES
    assert "complete_transaction" in COMMAND_TYPES
    assert list(COMMAND_TYPES) == sorted(set(COMMAND_TYPES))


# -- the field is named ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "field"),
    [
        (with_line(quantity=0), "submit_order.lines.0.quantity"),
        (with_line(quantity=10_001), "submit_order.lines.0.quantity"),
        (with_line(quantity=1.5), "submit_order.lines.0.quantity"),
        (with_line(unit_price_fen=-1), "submit_order.lines.0.unit_price_fen"),
        (with_line(unit_price_fen=1.25), "submit_order.lines.0.unit_price_fen"),
        (with_line(no_reason_exclusion="fragile"), "submit_order.lines.0.no_reason_exclusion"),
        (b.submit("O-1", lines=[]), "submit_order.lines"),
        (b.submit("O-1", shipping_region="cn-sh"), "submit_order.shipping_region"),
        (b.submit("O-1", purchase_type="wholesale"), "submit_order.purchase_type"),
        (b.submit("O 1"), "submit_order.order_no"),
        # An unknown key is named by where it is, never by its name: it may be someone's data.
        (b.submit("O-1", surprise=1), "submit_order"),
        (with_contact(surprise=1), "submit_order.contact"),
        (without(b.submit("O-1"), "contact"), "submit_order.contact"),
        (without(b.submit("O-1"), "command_id"), "submit_order.command_id"),
        (with_contact(phone="12"), "submit_order.contact.phone"),
        (with_contact(address="x"), "submit_order.contact.address"),
        (b.pay("O-1", amount_fen=0), "receive_payment.amount_fen"),
        (b.ship("O-1", estimated_delivery="2026-03-05T10:00:00"), "ship_order.estimated_delivery"),
        (b.deliver("O-1", signer_relation=""), "deliver_order.signer_relation"),
        (request_return(kind="changed_mind"), "request_return.kind"),
        (request_return(service_region="Hong Kong"), "request_return.service_region"),
        (b.order_cmd("close_order", "O-1", ground="whim"), "close_order.ground"),
        (b.other("restrict_account", account_no="a", ground="6.1(9)"), "restrict_account.ground"),
        (b.issue("C-1", kind="voucher"), "issue_entitlement.kind"),
        ({**b.submit("O-1"), "type": "drop_table"}, "type"),
        (without(b.submit("O-1"), "type"), "type"),
        ("submit_order", "type"),
        (None, "type"),
    ],
)
def test_bad_input_is_refused_naming_the_field(data: Any, field: str) -> None:
    error = invalid(data)

    assert error.field == field
    assert str(error).startswith(f"{field}: ")
    assert error.rule
    assert error.code == "INVALID_COMMAND"
    assert error.as_dict()["field"] == field
    assert isinstance(error, LedgerError)


def test_a_naive_time_is_refused_because_it_has_no_offset() -> None:
    error = invalid(b.ship("O-1", promised_delivery="2026-03-05T10:00:00"))

    assert error.field == "ship_order.promised_delivery"
    assert "timezone" in error.rule


def test_the_first_bad_line_is_the_one_named() -> None:
    lines = [
        {"sku": "A", "quantity": 1, "unit_price_fen": 1},
        {"sku": "B", "quantity": -2, "unit_price_fen": 1},
    ]

    assert invalid(b.submit("O-1", lines=lines)).field == "submit_order.lines.1.quantity"


# -- personal data never echoed ----------------------------------------------------------------
LEAK_CASES = [
    pytest.param(with_contact(phone=NAME), NAME, id="name-in-phone"),
    pytest.param(with_contact(recipient_name=NAME * 30), NAME, id="name-too-long"),
    pytest.param(with_contact(address=NAME), NAME, id="name-as-address"),
    pytest.param(with_contact(phone=PHONE + "x"), PHONE, id="phone-with-letter"),
    pytest.param(b.submit("O-1", account_no=f"{NAME} {PHONE}"), PHONE, id="phone-in-account"),
    pytest.param(b.submit("O-1", account_no=f"{NAME} {PHONE}"), NAME, id="name-in-account"),
    pytest.param(with_line(sku=NAME), NAME, id="name-in-sku"),
    pytest.param(with_line(quantity=PHONE), PHONE, id="phone-as-quantity"),
    pytest.param(b.submit("O-1", purchase_type=NAME), NAME, id="name-as-purchase-type"),
    pytest.param(b.ship("O-1", estimated_delivery=NAME), NAME, id="name-as-time"),
    pytest.param({**b.pay("O-1"), "payer_account": NAME * 30}, NAME, id="name-as-payer"),
    pytest.param(request_return(kind=NAME), NAME, id="name-as-return-kind"),
]

LEAK_BUGS = [
    pytest.param(with_contact(ip=PHONE), PHONE, id="phone-in-ip"),
    pytest.param(with_contact(ip=NAME), NAME, id="name-in-ip"),
    pytest.param({**b.submit("O-1"), "type": PHONE}, PHONE, id="phone-as-type"),
    pytest.param(b.submit("O-1", **{f"tel_{PHONE}": 1}), PHONE, id="phone-in-unknown-key"),
    pytest.param(with_contact(**{f"zhang_san_{PHONE}": 1}), PHONE, id="phone-in-nested-key"),
    pytest.param(with_contact(**{NAME: 1}), NAME, id="name-as-nested-key"),
    pytest.param(with_line(**{f"x{PHONE}": 1}), PHONE, id="phone-in-line-key"),
]


def assert_not_echoed(data: Any, value: str) -> None:
    error = invalid(data)

    assert value not in str(error)
    assert value not in repr(error)
    assert all(value not in text for text in error.as_dict().values())
    assert error.__cause__ is None and error.__suppress_context__


@pytest.mark.parametrize(("data", "value"), LEAK_CASES)
def test_the_error_never_contains_the_input_value(data: Any, value: str) -> None:
    assert_not_echoed(data, value)


@pytest.mark.parametrize(("data", "value"), LEAK_BUGS)
def test_the_error_never_contains_the_input_value_of_an_ip_or_a_type(data: Any, value: str) -> None:
    assert_not_echoed(data, value)


def test_a_bad_ip_is_still_refused_naming_its_field() -> None:
    assert invalid(with_contact(ip="999.1.1.1")).field == "submit_order.contact.ip"


def test_request_return_parses_the_damage_claim_default() -> None:
    command = parse_command(request_return())

    assert isinstance(command, RequestReturn)
    assert command.visible_damage_claimed is False


@pytest.mark.parametrize("data", [{}, {"command_id": "c-1", "order_no": "O-1"}])
def test_a_command_without_a_type_says_type_is_required_and_lists_the_types(
    data: dict[str, Any],
) -> None:
    with pytest.raises(InvalidCommand) as caught:
        parse_command(data)
    assert caught.value.field == "type"
    assert caught.value.rule.startswith("required; one of ")
    assert "submit_order" in caught.value.rule and "discriminator" not in caught.value.rule


def test_the_command_schema_describes_every_command_type() -> None:
    schema = command_schema()
    tags = {
        m["properties"]["type"]["const"]
        for m in schema["$defs"].values()
        if "type" in m.get("properties", {}) and "const" in m["properties"]["type"]
    }
    assert tags == set(COMMAND_TYPES)
    assert schema["discriminator"]["propertyName"] == "type"


# -- the rule in the ledger's words, never pydantic's ------------------------------------------
PYDANTIC_WORDING = ("should", "Value error", "after validation", "Field required", "Input ")
WRONG_VALUES: list[Any] = [None, True, 7, 1.5, "", "x" * 600, "has space", [], ["x"] * 1001, {}]


def _places() -> list[tuple[type[Any], tuple[str | int, ...]]]:
    """Every field of every command, lists and nested objects included: each leaf's path
    and every path above it."""
    found = {
        (leaf.command, leaf.path[:end]) for leaf in LEAVES for end in range(1, 1 + len(leaf.path))
    }
    return sorted(found, key=lambda place: (place[0].__name__, [str(p) for p in place[1]]))


@pytest.mark.parametrize(
    ("command", "path"), _places(), ids=lambda x: x.__name__ if isinstance(x, type) else None
)
def test_every_refusal_of_every_field_is_in_our_words(
    command: type[Any], path: tuple[str | int, ...]
) -> None:
    for wrong in WRONG_VALUES:
        try:
            parse_command(with_value(example(command), path, wrong))
        except InvalidCommand as exc:
            assert not [w for w in PYDANTIC_WORDING if w in exc.rule], (wrong, exc.message)
            assert exc.rule != "is not a valid value for this field", (wrong, exc.message)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            with_contact(address="ab"),
            "submit_order.contact.address: must be at least 4 character(s) long",
        ),
        (b.submit("O-1", lines=[]), "submit_order.lines: must hold at least 1 item(s)"),
        (b.submit("O-1", lines="x"), "submit_order.lines: must be a JSON array"),
        (b.submit("O-1", contact="x"), "submit_order.contact: must be a JSON object"),
        (without(b.submit("O-1"), "seller_id"), "submit_order.seller_id: required"),
        (b.submit("O-1", seller_id=5), "submit_order.seller_id: must be a JSON string"),
        (
            b.submit("O-1", purchase_type="retail"),
            "submit_order.purchase_type: must be 'consumer' or 'enterprise_group'",
        ),
        (
            b.submit("O-1", shipping_region="cn"),
            "submit_order.shipping_region: must match the pattern ^[A-Z]{2}-[A-Z0-9]{1,3}$",
        ),
        (
            b.ship("O-1", promised_delivery="soon"),
            "ship_order.promised_delivery: " + ISO_MOMENT_RULE,
        ),
    ],
)
def test_a_refusal_names_the_field_and_our_rule(data: Any, message: str) -> None:
    assert invalid(data).message == message
