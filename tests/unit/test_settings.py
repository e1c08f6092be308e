"""Settings read from the environment (DESIGN.md, Settings): LEDGER_POOL_SIZE and
LEDGER_GROUP_COMMIT*."""

from __future__ import annotations

import pytest

from ledger.domain.errors import InvalidCommand
from ledger.settings import (
    DEFAULT_POOL_SIZE,
    GroupCommitSettings,
    load_settings,
    read_group_commit,
    read_pool_size,
)


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


def test_group_commit_is_on_with_small_bounds_by_default() -> None:
    assert load_settings({}).group_commit == GroupCommitSettings(
        enabled=True, max_batch=64, wait_ms=2, max_queue=10_000
    )


@pytest.mark.parametrize(
    ("text", "enabled"),
    [
        ("off", False),
        ("OFF", False),
        ("0", False),
        ("false", False),
        ("on", True),
        (" On ", True),
        ("yes", True),
        ("", True),
    ],
)
def test_group_commit_is_switched_on_or_off(text: str, enabled: bool) -> None:
    assert read_group_commit({"LEDGER_GROUP_COMMIT": text}).enabled is enabled


def test_group_commit_bounds_are_taken_from_the_environment() -> None:
    env = {
        "LEDGER_GROUP_COMMIT_MAX_BATCH": "200",
        "LEDGER_GROUP_COMMIT_WAIT_MS": "0",
        "LEDGER_GROUP_COMMIT_MAX_QUEUE": "50",
    }
    assert read_group_commit(env) == GroupCommitSettings(
        enabled=True, max_batch=200, wait_ms=0, max_queue=50
    )


@pytest.mark.parametrize(
    ("name", "text", "rule"),
    [
        ("LEDGER_GROUP_COMMIT", "maybe", "must be on or off"),
        ("LEDGER_GROUP_COMMIT_MAX_BATCH", "0", "1 to 1000"),
        ("LEDGER_GROUP_COMMIT_MAX_BATCH", "1001", "1 to 1000"),
        ("LEDGER_GROUP_COMMIT_WAIT_MS", "2.5", "0 to 100"),
        ("LEDGER_GROUP_COMMIT_WAIT_MS", "101", "0 to 100"),
        ("LEDGER_GROUP_COMMIT_MAX_QUEUE", "-1", "1 to 1000000"),
        ("LEDGER_GROUP_COMMIT_MAX_QUEUE", "ten", "1 to 1000000"),
    ],
)
def test_a_bad_group_commit_setting_is_refused_naming_it(name: str, text: str, rule: str) -> None:
    with pytest.raises(InvalidCommand) as caught:
        load_settings({name: text})
    assert caught.value.field == name
    assert rule in caught.value.rule
    assert caught.value.message == f"{name}: {caught.value.rule}"  # the value never echoed
