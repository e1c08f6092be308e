"""Settings read from the environment (DESIGN.md, Settings): LEDGER_POOL_SIZE."""

from __future__ import annotations

import pytest

from ledger.domain.errors import InvalidCommand
from ledger.settings import DEFAULT_POOL_SIZE, load_settings, read_pool_size


def test_the_pool_size_defaults_to_a_small_number() -> None:
    assert read_pool_size({}) == DEFAULT_POOL_SIZE <= 5
    assert load_settings({}).pool_size == DEFAULT_POOL_SIZE


@pytest.mark.parametrize("text", ["2", "5", " 12 ", "100"])
def test_a_pool_size_from_2_to_100_is_taken(text: str) -> None:
    assert read_pool_size({"LEDGER_POOL_SIZE": text}) == int(text)


@pytest.mark.parametrize("text", ["0", "1", "101", "-3", "4.0", "four", "\uff14", "1e2"])
def test_any_other_pool_size_is_refused_naming_the_setting(text: str) -> None:
    with pytest.raises(InvalidCommand) as caught:
        read_pool_size({"LEDGER_POOL_SIZE": text})
    assert caught.value.field == "LEDGER_POOL_SIZE"
    assert "2 to 100" in caught.value.rule
