"""An import line holding an object with a repeated key is rejected ``INVALID_JSON``
(ledger.importer.decode_line): orjson would silently keep the last value, so
``"order_no": "N1", "order_no": "N2"`` would act on N2. Lines without one are read as before,
also those the quick count sends to the full check."""

from __future__ import annotations

import pytest

from ledger.importer import REPEATED_KEY, Bad, Item, decode_line

REPEATED = {
    "top level": b'{"type":"cancel_order","command_id":"c","order_no":"N1","order_no":"N2"}',
    "spaced": b'{"type":"cancel_order","command_id":"c","order_no" : "N1", "order_no"\t:"N2"}',
    "escaped": b'{"type":"cancel_order","command_id":"c","order_no":"N1","order\\u005fno":"N2"}',
    "nested": b'{"type":"submit_order","contact":{"phone":"1","name":"a","phone":"2"}}',
    "in a list": b'{"type":"submit_order","lines":[{"sku":"A"},{"sku":"B","sku":"C"}]}',
    "only once it holds": b'{"a":{"x":1},"a":{"x":1}}',
}
# Keys that look repeated to a quick count (":" after a quote inside a string, the same key
# in several objects) but are not.
NOT_REPEATED = {
    "colon in a value": b'{"type":"cancel_order","command_id":"c","order_no":"N1","n":"\\":"}',
    "one key per object": b'{"type":"submit_order","lines":[{"sku":"A"},{"sku":"B"}]}',
    "a key as a value": b'{"type":"cancel_order","command_id":"order_no","order_no":"N1"}',
    "empty object": b'{"type":"cancel_order","contact":{},"order_no":"N1"}',
}


@pytest.mark.parametrize("raw", REPEATED.values(), ids=REPEATED.keys())
def test_a_line_with_a_repeated_key_is_invalid_json_kept_raw(raw: bytes) -> None:
    decoded = decode_line(3, raw)
    assert isinstance(decoded, Bad)
    assert (decoded.rejection.line, decoded.rejection.code) == (3, "INVALID_JSON")
    assert decoded.rejection.message == REPEATED_KEY
    assert (decoded.original, decoded.raw) == (None, raw), "the line as written, to fix it"


@pytest.mark.parametrize("raw", NOT_REPEATED.values(), ids=NOT_REPEATED.keys())
def test_a_line_without_one_is_read_as_it_is(raw: bytes) -> None:
    assert isinstance(decode_line(3, raw), Item)


def test_a_line_nested_deeper_than_the_standard_library_reads_is_left_to_the_command() -> None:
    depth = 1020  # orjson reads up to 1024 levels; the standard library stops before 1000
    deep = b'{"type":"x","n":' + b'{"a":' * depth + b'"\\":"' + b"}" * depth + b"}"
    assert isinstance(decode_line(1, deep), Item)
