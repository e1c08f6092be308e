"""Every field of every command takes its JSON type strictly (issue 8, cases 3(a) and 5).

The fields are not listed here: they are found by walking the command models (nested models and
list items included), so a field added later is covered without touching this file. For each
one a valid command is generated from the models, then the one field is set to a bad value and
the command must be refused naming that field. The same data sent as a JSON line, decoded by
orjson as the importer does, must be refused the same way.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from ledger.commands import COMMAND_CLASSES, Chars, IntRange, parse_command
from ledger.domain.errors import InvalidCommand
from ledger.importer import Bad, decode_line
from tests.command_models import LEAVES, Leaf, example, valid_value, with_value

TEXT = [pytest.param(leaf, id=leaf.name) for leaf in LEAVES if leaf.kind is str]
INTEGERS = [pytest.param(leaf, id=leaf.name) for leaf in LEAVES if leaf.kind is int]
FLAGS = [pytest.param(leaf, id=leaf.name) for leaf in LEAVES if leaf.kind is bool]


def refused(data: dict[str, Any]) -> InvalidCommand:
    with pytest.raises(InvalidCommand) as caught:
        parse_command(data)
    return caught.value


def refused_as_json_line(data: dict[str, Any]) -> InvalidCommand:
    """As the importer reads it: one JSON line, decoded by orjson."""
    decoded = decode_line(1, json.dumps(data, ensure_ascii=False).encode())
    assert not isinstance(decoded, Bad)
    return refused(decoded.data)


# -- the walk finds every kind of field ----------------------------------------------------------
@pytest.mark.parametrize("command", COMMAND_CLASSES, ids=lambda c: c.__name__)
def test_the_generated_example_of_every_command_is_valid(command: type[BaseModel]) -> None:
    assert type(parse_command(example(command))) is command


def test_the_walk_reaches_nested_models_and_list_items() -> None:
    names = {leaf.name for leaf in LEAVES}

    assert {
        "refuse_delivery.reason",
        "submit_order.contact.recipient_name",
        "submit_order.contact.ip",
        "submit_order.lines.0.sku",
        "submit_order.gifts.0.gift_id",
        "close_order.evidence.orders.0",
        "submit_order.lines.0.quantity",
        "raise_flag.criterion",
        "refuse_delivery.quality_reason",
    } <= names


@pytest.mark.parametrize("leaf", TEXT)
def test_every_text_field_is_strict_and_character_checked(leaf: Leaf) -> None:
    assert leaf.meta(Chars) is not None
    assert any(type(m).__name__ == "Strict" for m in leaf.metadata)


# -- text: case 3(a) ---------------------------------------------------------------------------
BAD_CHARACTERS = [
    pytest.param("\x00", id="NUL"),
    pytest.param("\x1b", id="ESC"),
    pytest.param("\x7f", id="DEL"),
    pytest.param("\x85", id="NEL-C1"),
    pytest.param("\u2028", id="line-separator"),
    pytest.param("\ufffe", id="noncharacter-FFFE"),
    pytest.param("\ufdd0", id="noncharacter-FDD0"),
    pytest.param("\U0010ffff", id="noncharacter-10FFFF"),
    pytest.param("\ud800", id="lone-surrogate"),
    pytest.param("\r", id="carriage-return"),
]


def _text_with(leaf: Leaf, bad: str) -> dict[str, Any]:
    data = example(leaf.command)
    good = valid_value(str, leaf.metadata)
    return with_value(data, leaf.path, good[:2] + bad + good[2:])


@pytest.mark.parametrize("leaf", TEXT)
@pytest.mark.parametrize("bad", BAD_CHARACTERS)
def test_every_text_field_refuses_control_characters_surrogates_and_noncharacters(
    leaf: Leaf, bad: str
) -> None:
    error = refused(_text_with(leaf, bad))

    assert error.field == leaf.name
    assert bad not in str(error)


@pytest.mark.parametrize("leaf", TEXT)
def test_a_line_feed_is_taken_only_by_fields_documented_as_multi_line(leaf: Leaf) -> None:
    multiline = leaf.meta(Chars).multiline
    for separator in ("\n", "\t"):
        data = _text_with(leaf, separator)
        if multiline:
            assert parse_command(data)
        else:
            assert refused(data).field == leaf.name


def test_the_multi_line_fields_are_the_free_text_notes_and_say_so() -> None:
    multiline = [leaf for leaf in LEAVES if leaf.kind is str and leaf.meta(Chars).multiline]

    assert "refuse_delivery.reason" in {leaf.name for leaf in multiline}
    for leaf in multiline:
        assert leaf.path[-1] in {"reason", "note", "description"}, leaf.name
        described = leaf.command.model_fields[str(leaf.path[0])].description
        assert "may span lines" in (described or ""), leaf.name


def test_a_nul_in_a_refusal_reason_is_refused_naming_the_field() -> None:
    data = {
        "type": "refuse_delivery",
        "command_id": "c-1",
        "order_no": "O-1",
        "quality_reason": False,
        "reason": "a\u0000b",
    }

    error = refused(data)

    assert (error.field, error.code) == ("refuse_delivery.reason", "INVALID_COMMAND")
    assert refused_as_json_line(data).as_dict() == error.as_dict()


@pytest.mark.parametrize("leaf", TEXT)
@pytest.mark.parametrize("bad", [p for p in BAD_CHARACTERS if p.id != "lone-surrogate"])
def test_a_json_line_decoded_by_orjson_is_refused_the_same_way(leaf: Leaf, bad: Any) -> None:
    data = _text_with(leaf, bad)

    assert refused_as_json_line(data).as_dict() == refused(data).as_dict()


def test_a_lone_surrogate_escape_in_a_json_line_is_refused_as_invalid_json() -> None:
    line = json.dumps({"type": "refuse_delivery", "reason": "a\ud800b"}).encode()

    decoded = decode_line(7, line)

    assert isinstance(decoded, Bad)
    assert decoded.rejection.code == "INVALID_JSON"


# -- integers and flags: case 5 ----------------------------------------------------------------
def _int_rule(leaf: Leaf) -> str:
    bounds = leaf.meta(IntRange)
    return f"must be a JSON integer from {bounds.low} to {bounds.high}"


@pytest.mark.parametrize("leaf", INTEGERS)
def test_every_integer_field_takes_its_bounds(leaf: Leaf) -> None:
    bounds = leaf.meta(IntRange)
    assert bounds is not None, "an integer field without a documented range"
    for value in (bounds.low, bounds.high):
        assert parse_command(with_value(example(leaf.command), leaf.path, value))


@pytest.mark.parametrize("leaf", INTEGERS)
def test_every_integer_field_refuses_booleans_decimals_text_and_out_of_range(leaf: Leaf) -> None:
    bounds = leaf.meta(IntRange)
    bad_values = [
        True,
        False,
        float(bounds.low),
        float(bounds.high),
        str(bounds.low),
        *([] if leaf.nullable else [None]),
        bounds.low - 1,
        bounds.high + 1,
        10**20,
        -(10**20),
    ]
    for value in bad_values:
        data = with_value(example(leaf.command), leaf.path, value)
        error = refused(data)
        assert (error.field, error.rule) == (leaf.name, _int_rule(leaf)), value
        # orjson reads 10**20 as a decimal (1e20): the message must stay the same.
        assert refused_as_json_line(data).as_dict() == error.as_dict(), value


@pytest.mark.parametrize("leaf", FLAGS)
def test_every_flag_takes_only_a_json_boolean(leaf: Leaf) -> None:
    for value in (True, False):
        assert parse_command(with_value(example(leaf.command), leaf.path, value))
    for wrong in ("true", "false", 1, 0, 1.0, *([] if leaf.nullable else [None])):
        data = with_value(example(leaf.command), leaf.path, wrong)
        error = refused(data)
        assert error.field == leaf.name, wrong
        assert "true or false" in error.rule, wrong
        assert refused_as_json_line(data).as_dict() == error.as_dict(), wrong


def test_a_payment_of_true_fen_is_refused_not_recorded_as_one_fen() -> None:
    data = example(next(c for c in COMMAND_CLASSES if c.__name__ == "ReceivePayment"))
    for value in (True, 10000.0, "10000"):
        error = refused({**data, "amount_fen": value})
        assert error.field == "receive_payment.amount_fen"
        assert error.rule == "must be a JSON integer from 1 to 1000000000000"


def test_a_quantity_of_ten_to_the_twentieth_names_the_field_and_its_range() -> None:
    data = example(next(c for c in COMMAND_CLASSES if c.__name__ == "SubmitOrder"))
    line = '{"sku": "A", "quantity": 100000000000000000000, "unit_price_fen": 1}'
    raw = orjson.dumps(data).replace(orjson.dumps(data["lines"][0]), line.encode())

    decoded = decode_line(1, raw)
    assert not isinstance(decoded, Bad)
    error = refused(decoded.data)

    assert error.field == "submit_order.lines.0.quantity"
    assert error.rule == "must be a JSON integer from 1 to 10000"


# -- date-times: issue 8 case 6, the kind of fault behind "at" ---------------------------------
MOMENTS = [pytest.param(leaf, id=leaf.name) for leaf in LEAVES if leaf.kind is datetime]


def test_the_walk_finds_the_date_time_fields() -> None:
    assert {"ship_order.estimated_delivery", "define_promotion.valid_until"} <= {
        leaf.name for leaf in LEAVES if leaf.kind is datetime
    }


@pytest.mark.parametrize("leaf", MOMENTS)
def test_every_date_time_field_takes_the_edges_of_its_range(leaf: Leaf) -> None:
    for value in ("2000-01-01T08:00:00+08:00", "2099-12-31T23:59:59+00:00"):
        assert parse_command(with_value(example(leaf.command), leaf.path, value))


@pytest.mark.parametrize("leaf", MOMENTS)
def test_every_date_time_field_refuses_the_calendars_edges_and_naive_times(leaf: Leaf) -> None:
    for value in (
        "0001-01-01T00:00:00+08:00",
        "9999-12-31T23:59:59-08:00",
        "1999-12-31T23:59:59+00:00",
        "2100-01-01T00:00:00+00:00",
        "2026-03-01T10:00:00",
    ):
        data = with_value(example(leaf.command), leaf.path, value)
        error = refused(data)
        assert error.field == leaf.name, value
        assert value not in error.message, value
        assert refused_as_json_line(data).as_dict() == error.as_dict(), value
