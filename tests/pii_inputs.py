"""Commands with personal data in every position (issue 8, case 14), generated from the models.

A Chinese name, a mainland mobile and an address go into every field of every command (text,
integer and flag fields, nested ones included) and into unknown keys at the top level and in
every nested object. The documented identifiers (order number, command id) are left alone:
messages may name those. Shared by the application test and the ``ledger import`` test.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from ledger.commands import COMMAND_CLASSES
from tests.command_models import LEAVES, example, with_value

NAME = "张三丰"
PHONE = "13812345678"
ADDRESS = "北京市朝阳区建国路88号"
PERSONAL = (NAME, PHONE, ADDRESS)

# Text values: refused as malformed by most fields, and ``k…`` passes every identifier pattern,
# so it reaches the rules (an account number, a coupon code, a SKU, a method…).
TEXT_VALUES = (NAME, PHONE, ADDRESS, f"{NAME} {PHONE} {ADDRESS}", f"k{PHONE}")
DOCUMENTED_IDENTIFIERS = {("command_id",), ("order_no",)}
_ids = itertools.count(1)


def _objects(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Paths of every JSON object inside a command, the command itself first."""
    if isinstance(value, dict):
        yield path
        for key, item in value.items():
            yield from _objects(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _objects(item, (*path, index))


def _with_key(data: dict[str, Any], path: tuple[str | int, ...], key: str) -> dict[str, Any]:
    return with_value(data, (*path, key), 1)


def commands_with_personal_data(order_no: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where the data is, the command) for every position; order commands name ``order_no``."""
    for leaf in LEAVES:
        if leaf.path in DOCUMENTED_IDENTIFIERS:
            continue
        values: tuple[Any, ...] = TEXT_VALUES
        if leaf.kind is int:
            values = (int(PHONE), PHONE)
        elif leaf.kind is bool:
            values = (PHONE,)
        for value in values:
            yield (
                leaf.name,
                _for_order(with_value(example(leaf.command), leaf.path, value), order_no),
            )
    for command in COMMAND_CLASSES:
        data = _for_order(example(command), order_no)
        for path in _objects(data):
            for key in (f"tel_{PHONE}", f"zhang_san_{PHONE}", NAME):
                where = ".".join(str(p) for p in (data["type"], *path, key))
                yield where, _with_key(data, path, key)


def _for_order(data: dict[str, Any], order_no: str) -> dict[str, Any]:
    """Aimed at ``order_no``, with a command id of its own (a reused one is refused first)."""
    fresh = {**data, "command_id": f"pii-{next(_ids)}"}
    return {**fresh, "order_no": order_no} if "order_no" in data else fresh


def echoed(texts: list[str]) -> list[str]:
    """The personal values found in any of ``texts``."""
    return [value for value in PERSONAL for text in texts if value in text]
