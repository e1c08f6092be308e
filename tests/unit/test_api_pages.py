"""Page tokens and cursors (api/pages.py, projections/queries.py): a token opens only for
the list and filters it was sealed for, unaltered; a cursor has its list's shape."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest

from api.errors import InvalidParameter
from api.pages import PageTokens, derive_key, scope_of
from projections.queries import ORDERS_BY_ACCOUNT, RETENTION_STEPS

AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
SCOPE = scope_of("orders_by_account", {"account_no": "acct-1"})


@pytest.fixture
def tokens() -> PageTokens:
    return PageTokens(derive_key(os.urandom(32)))


def test_a_token_opens_to_its_cursor_for_its_own_scope_only(tokens: PageTokens) -> None:
    # Values long enough that a random token never holds them by chance ("A1" once did).
    cursor = ORDERS_BY_ACCOUNT.cursor_of({"submitted_at": AT, "order_no": "order-no-000042"})
    token = tokens.seal(SCOPE, cursor)
    assert tokens.open(SCOPE, token) == cursor
    assert ORDERS_BY_ACCOUNT.parse_cursor(tokens.open(SCOPE, token)) == (AT, "order-no-000042")
    assert "acct-1" not in token and "000042" not in token  # opaque, not merely encoded
    other = scope_of("orders_by_account", {"account_no": "acct-2"})
    with pytest.raises(InvalidParameter) as caught:
        tokens.open(other, token)
    assert caught.value.name == "page_token" and token not in caught.value.message


def test_another_ledgers_key_does_not_open_a_token(tokens: PageTokens) -> None:
    token = tokens.seal(SCOPE, ["x"])
    with pytest.raises(InvalidParameter):
        PageTokens(derive_key(os.urandom(32))).open(SCOPE, token)


@pytest.mark.parametrize("token", ["", "!!!!", "AAAA", "A" * 30, "é" * 40, "a" * 1025, "Zm9v\x00"])
def test_garbage_is_an_invalid_page_token(tokens: PageTokens, token: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        tokens.open(SCOPE, token)
    assert caught.value.code == "INVALID_PARAMETER"


@pytest.mark.parametrize(
    "values",
    [
        None,
        [],
        ["2026-03-02T01:00:00+00:00"],
        ["2026-03-02T01:00:00+00:00", "A1", "extra"],
        ["2026-03-02T01:00:00", "A1"],  # no offset
        ["not a time", "A1"],
        [1700000000, "A1"],
        ["2026-03-02T01:00:00+00:00", 7],
    ],
)
def test_a_cursor_of_the_wrong_shape_is_refused(values: Any) -> None:
    with pytest.raises(ValueError):
        ORDERS_BY_ACCOUNT.parse_cursor(values)


def test_an_integer_key_takes_integers_only() -> None:
    assert RETENTION_STEPS.parse_cursor([12]) == (12,)
    for values in ([True], ["12"], [1.5]):
        with pytest.raises(ValueError):
            RETENTION_STEPS.parse_cursor(values)
