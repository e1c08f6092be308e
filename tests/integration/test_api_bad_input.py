"""Bad input over HTTP (the API issue, "Done means"): malformed JSON, invalid UTF-8, control
characters in every text field, the wrong JSON type or range for money and quantities,
unknown fields, 10 MB bodies, deep nesting, the wrong media type, empty and non-object
bodies. Each is the right 4xx problem (400 INVALID_JSON, 413 REQUEST_TOO_LARGE, 415
UNSUPPORTED_MEDIA_TYPE, 422 INVALID_COMMAND naming the field by JSON pointer), never a 5xx;
nothing is written (the log's head stays where it was); and no response repeats the value
sent, which here is always personal data. Through the real ASGI app, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest

from api.commands import ADMIN_COMMANDS
from api.limits import DEFAULT_MAX_BODY_BYTES, MAX_DEPTH
from ledger.commands import COMMAND_CLASSES
from tests.command_models import LEAVES, Leaf, example, with_value
from tests.fix_api import Api
from tests.integration.test_api_commands import PROBLEM, head
from tests.pii_inputs import ADDRESS, NAME, PERSONAL, PHONE

JSON = "application/json"
ENVELOPE = ("type", "command_id")
TEN_MB = 10 << 20
# Characters no text field takes: C0 (NUL, BEL, ESC, a line feed in a one-line field), DEL's
# neighbour C1 (NEL), the line and paragraph separators.
CONTROL = ("\x00", "\x07", "\x1b", "\n", "\x85", "\u2028", "\u2029")
# What an integer field must refuse: not a JSON integer, or out of range.
NOT_AN_INTEGER: tuple[Any, ...] = (1.0, 1.5, 13812345678.5, PHONE, "1", True, False)
OUT_OF_RANGE: tuple[Any, ...] = (-1, -int(PHONE), 10**30, 2**64, -(2**63) - 1)


def kind_of(command: type[Any]) -> str:
    return str(example(command)["type"])


SUBMIT = next(command for command in COMMAND_CLASSES if kind_of(command) == "submit_order")


def body_of(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ENVELOPE}


def pointer(path: tuple[str | int, ...]) -> str:
    return "".join(f"/{part}" for part in path)


def send(api: Api, kind: str, content: bytes, content_type: str | None = JSON) -> Any:
    """``content`` as the body of a POST of command ``kind``, with a key and the right role."""
    headers = {**api.auth("admin" if kind in ADMIN_COMMANDS else "service")}
    headers["Idempotency-Key"] = f"bad-{kind}"
    if content_type is not None:
        headers["Content-Type"] = content_type
    return api.client.post(f"/v1/commands/{kind}", content=content, headers=headers)


def refused(response: Any, status: int, code: str, *sent: str) -> dict[str, Any]:
    """The problem ``code`` with ``status``, repeating nothing of ``sent`` or PERSONAL."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status
    echoed = [value for value in (*PERSONAL, *sent) if value and value in response.text]
    assert not echoed, response.text
    return body


def pointers(body: dict[str, Any]) -> list[str]:
    return [error["pointer"] for error in body.get("errors", [])]


@pytest.fixture
def unchanged(api: Api) -> Iterator[Api]:
    """The API, and afterwards the check that nothing was written."""
    before = head(api)
    yield api
    assert head(api) == before


# -- the body is not JSON -----------------------------------------------------------------
MALFORMED = [
    f'{{"recipient_name": "{NAME}"'.encode(),  # cut off
    f"{{'recipient_name': '{NAME}'}}".encode(),  # single quotes
    f'{{"recipient_name": "{NAME}",}}'.encode(),  # trailing comma
    f'{{"phone": {PHONE}x}}'.encode(),
    b'{"amount_fen": NaN}',
    b'{"amount_fen": Infinity}',
    b'{"amount_fen": 1e400}',  # a float beyond double: infinity
    b"\xef\xbb\xbf{}",  # a byte-order mark
    f"{NAME}".encode(),
]
INVALID_UTF8 = [
    b'{"account_no": "\xff\xfe"}',
    b'{"account_no": "\xc0\xaf"}',  # an overlong "/"
    b'{"account_no": "\xed\xa0\x80"}',  # a surrogate, encoded
    b'{"account_no": "\\ud800"}',  # a lone surrogate, escaped
    NAME.encode("gb18030"),
    f'{{"recipient_name": "{NAME}"}}'.encode("utf-16"),
]


def test_a_body_that_is_not_json_in_utf8_is_400(unchanged: Api) -> None:
    for content in MALFORMED + INVALID_UTF8:
        refused(send(unchanged, "submit_order", content), 400, "INVALID_JSON")


# -- text fields -------------------------------------------------------------------------
def text_leaves() -> list[Leaf]:
    return [
        leaf for leaf in LEAVES if leaf.kind in (str, datetime) and leaf.path[0] not in ENVELOPE
    ]


def with_control(leaf: Leaf, char: str) -> bytes:
    return orjson.dumps(body_of(with_value(example(leaf.command), leaf.path, f"{NAME}{char}")))


def test_a_control_character_in_any_text_field_of_submit_order_is_422_naming_it(
    unchanged: Api,
) -> None:
    fields = [leaf for leaf in text_leaves() if leaf.type_tag == "submit_order"]
    for leaf, char in [(leaf, char) for leaf in fields for char in CONTROL]:
        response = send(unchanged, "submit_order", with_control(leaf, char))
        body = refused(response, 422, "INVALID_COMMAND")
        assert pointers(body) == [pointer(leaf.path)], (leaf.name, f"U+{ord(char):04X}")


def test_a_nul_in_any_text_field_of_any_command_is_422_naming_it(unchanged: Api) -> None:
    for leaf in text_leaves():
        response = send(unchanged, leaf.type_tag, with_control(leaf, "\x00"))
        body = refused(response, 422, "INVALID_COMMAND")
        assert pointers(body) == [pointer(leaf.path)], leaf.name


# -- money and quantities ----------------------------------------------------------------
INT_LEAVES = [leaf for leaf in LEAVES if leaf.kind is int]


def test_money_and_quantities_take_only_json_integers_in_their_range(unchanged: Api) -> None:
    values = NOT_AN_INTEGER + OUT_OF_RANGE
    for leaf, value in [(leaf, value) for leaf in INT_LEAVES for value in values]:
        data = with_value(example(leaf.command), leaf.path, value)
        content = json.dumps(body_of(data)).encode()  # orjson refuses integers past 64 bits
        # A number long enough to be someone's phone or account must not come back.
        said = (str(value),) if len(str(value)) > 6 else ()
        body = refused(send(unchanged, leaf.type_tag, content), 422, "INVALID_COMMAND", *said)
        assert pointers(body) == [pointer(leaf.path)], (leaf.name, value)


# -- unknown fields ----------------------------------------------------------------------
def objects(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every JSON object in ``value``, ``value`` itself first."""
    if isinstance(value, dict):
        yield path
        for key, item in value.items():
            yield from objects(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from objects(item, (*path, index))


def test_an_unknown_field_anywhere_is_422_at_the_object_holding_it_never_named(
    unchanged: Api,
) -> None:
    for command in COMMAND_CLASSES:
        data = body_of(example(command))
        for path in objects(data):
            for unknown in (NAME, f"tel_{PHONE}"):
                sent = with_value(data, (*path, unknown), ADDRESS)
                response = send(unchanged, kind_of(command), orjson.dumps(sent))
                body = refused(response, 422, "INVALID_COMMAND", unknown)
                assert pointers(body) == [pointer(path)], (kind_of(command), path)


# -- size, depth, media type, shape -------------------------------------------------------
def ten_megabytes() -> bytes:
    filler = (NAME * (TEN_MB // len(NAME.encode()) // 3))[: TEN_MB // 3]
    return orjson.dumps({"order_no": "B1", "note": filler})


def test_a_10_mb_body_with_its_content_length_is_413(unchanged: Api) -> None:
    content = ten_megabytes()
    assert len(content) > DEFAULT_MAX_BODY_BYTES
    for content_type in (JSON, "text/plain"):  # the size is refused before the type
        refused(send(unchanged, "submit_order", content, content_type), 413, "REQUEST_TOO_LARGE")


def test_a_10_mb_body_sent_chunked_without_a_length_is_413(unchanged: Api) -> None:
    content = ten_megabytes()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(content), 64 << 10):
            yield content[start : start + (64 << 10)]

    headers = {**unchanged.auth("service"), "Idempotency-Key": "chunked", "Content-Type": JSON}
    response = unchanged.client.post("/v1/commands/submit_order", content=chunks(), headers=headers)
    assert "content-length" not in {k.lower() for k in response.request.headers}
    refused(response, 413, "REQUEST_TOO_LARGE")


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    """``depth`` levels: objects and arrays in turn, inside the submission's ``contact``."""
    opened = b"".join(b'{"a":' if level % 2 == 0 else b"[" for level in range(depth - 1))
    closed = b"".join(b"}" if level % 2 == 0 else b"]" for level in reversed(range(depth - 1)))
    return b'{"contact":' + opened + leaf + closed + b"}"


def test_json_nested_deeper_than_the_limit_is_400(unchanged: Api) -> None:
    for depth in (MAX_DEPTH + 1, 1000, 100_000):
        content = nested(depth, f'"{NAME}"'.encode())
        refused(send(unchanged, "submit_order", content), 400, "INVALID_JSON")


def test_an_object_with_a_repeated_key_is_400_as_the_import_refuses_it(unchanged: Api) -> None:
    for content in (
        b'{"order_no": "A1", "order_no": "A2"}',
        b'{"contact": {"phone": "1", "phone": "13800000000"}}',
        rb'{"order_no": "A1", "order_\u006eo": "A2"}',  # the same key, escaped
    ):
        body = refused(send(unchanged, "submit_order", content), 400, "INVALID_JSON")
        assert "repeated key" in body["detail"]


def test_json_nested_to_the_limit_is_parsed_and_judged_as_a_command(unchanged: Api) -> None:
    body = refused(send(unchanged, "submit_order", nested(MAX_DEPTH)), 422, "INVALID_COMMAND")
    assert "/contact" in pointers(body)


NOT_JSON = (
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "application/jsonx",
    "application/json; charset=latin-1",
    "application/json; charset=utf-16",
    "",
    None,
)
JSON_TYPES = ("application/json; charset=utf-8", "Application/JSON", "application/problem+json")
NOT_AN_OBJECT = (
    b"[]",
    f'[{{"order_no": "{NAME}"}}]'.encode(),
    b"null",
    b"1",
    b"true",
    f'"{PHONE}"'.encode(),
)


def test_a_body_that_is_not_declared_utf8_json_is_415(unchanged: Api) -> None:
    content = orjson.dumps(body_of(example(SUBMIT)))
    for content_type in NOT_JSON:
        response = send(unchanged, "submit_order", content, content_type)
        refused(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_json_declared_in_any_accepted_way_is_taken(unchanged: Api) -> None:
    data = with_value(example(SUBMIT), ("account_no",), None)  # judged as a command, refused
    for content_type in JSON_TYPES:
        response = send(unchanged, "submit_order", orjson.dumps(body_of(data)), content_type)
        assert pointers(refused(response, 422, "INVALID_COMMAND")) == ["/account_no"]


def test_an_empty_body_is_422_naming_every_required_field(unchanged: Api) -> None:
    for content_type in (JSON, None):
        response = send(unchanged, "submit_order", b"", content_type)
        body = refused(response, 422, "INVALID_COMMAND")
        assert {"/order_no", "/account_no", "/lines", "/contact"} <= set(pointers(body))


def test_a_body_that_is_not_a_json_object_is_422_at_its_root(unchanged: Api) -> None:
    for content in NOT_AN_OBJECT:
        body = refused(send(unchanged, "submit_order", content), 422, "INVALID_COMMAND")
        assert pointers(body) == [""]


# -- an account number in a path or filter is never a phone number or an email ----------------
ACCOUNT_ROUTES = [
    ("GET", "/v1/orders?account_no={}", "service"),
    ("GET", "/v1/entitlements?account_no={}", "service"),
    ("GET", "/v1/accounts/{}/linked", "service"),
    ("GET", "/v1/accounts/{}/purchase-limits/PHONE-14", "service"),
    ("GET", "/v1/accounts/{}/refusals", "service"),
    ("GET", "/v1/subjects/{}/retention-steps", "auditor"),
    ("GET", "/v1/subjects/{}/retention", "auditor"),
    ("POST", "/v1/subjects/{}/holds", "admin"),
    ("POST", "/v1/subjects/{}/holds/CASE-1/release", "admin"),
    ("POST", "/v1/subjects/{}/access-copies", "admin"),
    ("POST", "/v1/subjects/{}/erasure", "admin"),
]


@pytest.mark.parametrize("shape", [PHONE, "li.lei@example.com"], ids=["phone", "email"])
def test_an_account_in_a_path_or_filter_that_is_a_phone_or_email_is_400_never_echoed(
    unchanged: Api, shape: str
) -> None:
    """Issue 11, item 7: as a command's ``account_no`` would be (a read once answered an empty
    page or NOT_FOUND for a phone number, which told a caller it had been looked up)."""
    for method, route, role in ACCOUNT_ROUTES:
        headers = {**unchanged.auth(role), "Idempotency-Key": "acct-shape-1"}
        body = {"reference": "CASE-1", "reason": "dispute"} if method == "POST" else None
        response = unchanged.client.request(method, route.format(shape), headers=headers, json=body)
        found = refused(response, 400, "INVALID_PARAMETER", shape)
        assert "never a phone number or email" in found["detail"], (route, found)
