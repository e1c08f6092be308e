"""The JSON Schema ``ledger commands --json-schema`` prints is the one the import takes
(issue 9): every command the demo and the import tests send, as an import line with its
``"at"``, is valid under it; what the validators refuse for a rule JSON Schema can say (a
field's pattern, its characters, its bounds) the schema refuses too.

Checked with tests/json_schema_check.py, which fails on any keyword it does not know.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from ledger.clock import EARLIEST_COMMAND_TIME
from ledger.commands import COMMAND_CLASSES, LATEST_MOMENT, command_schema, parse_command
from ledger.demo.traffic import MIN_ORDERS_FOR_EVERY_PATH, generate_traffic
from ledger.domain.errors import InvalidCommand
from ledger.importer import IMPORT_TIME, import_line_schema
from tests import builders as b
from tests.command_models import LEAVES, Leaf, example, valid_value, with_value
from tests.e2e.test_import_cli import good_lines
from tests.json_schema_check import errors
from tests.unit.test_command_fields import BAD_CHARACTERS

SCHEMA = import_line_schema()
ASTRAL_NONCHARACTERS = {"\U0010ffff"}  # beyond the pattern: said in the description


def _field_schema(leaf: Leaf) -> dict[str, Any]:
    """The schema of one leaf, refs followed, ``| None`` and list items unwrapped."""
    defs = SCHEMA["$defs"]
    spec: dict[str, Any] = defs[leaf.command.__name__]
    for part in leaf.path:
        spec = spec["items"] if isinstance(part, int) else spec["properties"][part]
        while "$ref" in spec or "anyOf" in spec:
            if "$ref" in spec:
                spec = defs[spec["$ref"].rsplit("/", 1)[-1]]
            else:
                spec = next(s for s in spec["anyOf"] if s.get("type") != "null")
    return spec


def _free_text(leaf: Leaf) -> bool:
    """A text field whose pattern is the characters' rule only (``Chars.pattern``)."""
    return str(_field_schema(leaf)["pattern"]).startswith("^[^")


TEXT = [pytest.param(leaf, id=leaf.name) for leaf in LEAVES if leaf.kind is str]
FREE_TEXT = [p for p in TEXT if _free_text(p.values[0])]
IDENTIFIERS = [p for p in TEXT if not _free_text(p.values[0])]
MOMENTS = [pytest.param(leaf, id=leaf.name) for leaf in LEAVES if leaf.kind is datetime]


def import_lines_the_tests_send() -> list[dict[str, Any]]:
    """The demo's traffic over every path, as import lines, and the import tests' lines."""
    demo = [
        {**command, "at": at.isoformat()}
        for command, at in generate_traffic(MIN_ORDERS_FOR_EVERY_PATH, seed=1)
    ]
    built = [
        b.submit("S-1"),
        b.pay("S-1"),
        b.ship("S-1"),
        b.deliver("S-1"),
        b.issue("CPN-1"),
        b.order_cmd("complete_transaction", "S-1"),
        {**b.submit("S-2"), "at": "2026-01-05T10:00:00+08:00"},
    ]
    return [*demo, *built, *good_lines()]


def test_the_demo_and_import_lines_are_many_and_of_every_kind() -> None:
    lines = import_lines_the_tests_send()
    assert len(lines) > 250
    assert len({line["type"] for line in lines}) > 25


@pytest.mark.parametrize("line", import_lines_the_tests_send(), ids=lambda line: line["type"])
def test_every_line_the_demo_and_import_tests_send_is_valid_under_the_schema(
    line: dict[str, Any],
) -> None:
    parse_command({k: v for k, v in line.items() if k != "at"})  # the import takes it
    assert errors(SCHEMA, line) == []


@pytest.mark.parametrize("command", COMMAND_CLASSES, ids=lambda c: c.__name__)
def test_every_command_with_every_optional_part_is_valid_with_and_without_at(
    command: type[Any],
) -> None:
    data = example(command)
    assert errors(SCHEMA, data) == []
    assert errors(SCHEMA, {**data, "at": "2026-03-01T10:00:00+08:00"}) == []
    assert errors(command_schema(), data) == []


def test_at_is_the_one_field_the_import_adds_to_the_command_schema() -> None:
    commands = command_schema()
    added = SCHEMA["$defs"]
    assert set(added) == {*commands["$defs"], IMPORT_TIME}
    for name, model in commands["$defs"].items():
        properties = dict(added[name]["properties"])
        if "const" in model["properties"].get("type", {}):
            assert properties.pop("at") == {"$ref": f"#/$defs/{IMPORT_TIME}"}
        assert properties == model["properties"], name
    line = {**b.submit("S-1"), "at": "2026-03-01T10:00:00+08:00"}
    assert errors(commands, line) != []  # the API's command takes no "at"


@pytest.mark.parametrize(
    "at", ["yesterday", "1999-12-31T23:59:59Z", "2026-03-01T10:00:00", "2026-03-01T10:00:00+0800"]
)
def test_an_at_the_import_refuses_for_its_form_or_its_start_the_schema_refuses(at: str) -> None:
    assert errors(SCHEMA, {**b.submit("S-1"), "at": at}) != []


@pytest.mark.parametrize("leaf", TEXT)
@pytest.mark.parametrize("bad", BAD_CHARACTERS)
def test_a_character_a_text_field_refuses_is_refused_by_its_schema(leaf: Leaf, bad: str) -> None:
    good = valid_value(str, leaf.metadata)
    data = with_value(example(leaf.command), leaf.path, good[:2] + bad + good[2:])
    with pytest.raises(InvalidCommand):
        parse_command(data)
    if bad in ASTRAL_NONCHARACTERS:
        return
    assert errors(SCHEMA, data) != [], leaf.name


@pytest.mark.parametrize("leaf", FREE_TEXT)
def test_a_free_text_field_says_its_rule_in_words_too(leaf: Leaf) -> None:
    """The pattern leaves out the noncharacters beyond the BMP; the description does not."""
    assert _field_schema(leaf).get("description"), leaf.name


def test_the_walk_finds_identifiers_and_free_text() -> None:
    assert len(IDENTIFIERS) > 20 and len(FREE_TEXT) > 5


@pytest.mark.parametrize("leaf", IDENTIFIERS)
def test_an_identifier_the_validator_refuses_for_its_pattern_the_schema_refuses(
    leaf: Leaf,
) -> None:
    data = with_value(example(leaf.command), leaf.path, "has space")
    with pytest.raises(InvalidCommand):
        parse_command(data)
    assert errors(SCHEMA, data) != [], leaf.name


@pytest.mark.parametrize("leaf", MOMENTS)
def test_a_date_time_field_shows_its_bounds_and_the_schema_holds_them(leaf: Leaf) -> None:
    spec = _field_schema(leaf)
    assert (spec["format"], spec["formatMinimum"], spec["formatExclusiveMaximum"]) == (
        "date-time",
        EARLIEST_COMMAND_TIME.isoformat().replace("+00:00", "Z"),
        LATEST_MOMENT.isoformat().replace("+00:00", "Z"),
    )
    for outside in ("1999-12-31T23:59:59+00:00", "2100-01-01T00:00:00+00:00"):
        data = with_value(example(leaf.command), leaf.path, outside)
        with pytest.raises(InvalidCommand):
            parse_command(data)
        assert errors(SCHEMA, data) != [], outside


def test_the_signers_the_domain_accepts_are_in_the_schema() -> None:
    from ledger.domain.order.delivery import SIGNER_RELATIONS

    described = SCHEMA["$defs"]["DeliverOrder"]["properties"]["signer_relation"]["description"]
    assert all(relation in described for relation in SIGNER_RELATIONS)
    assert "SIGNER_NOT_AUTHORISED" in described
