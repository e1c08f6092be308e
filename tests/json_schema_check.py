"""A small JSON Schema (draft 2020-12) checker for the keywords ``ledger commands
--json-schema`` uses, so the tests can hold a document against the schema without a
dependency (``jsonschema`` is not installed).

It knows every keyword the schema carries and fails on one it does not know, so a keyword
added later cannot be skipped silently. ``pattern`` is searched as ECMA-262 does: ``$``
ends the text (Python's ``$`` also matches before a final line feed). ``formatMinimum`` and
``formatExclusiveMaximum`` (ajv-formats) compare RFC 3339 times as instants.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

# Keywords that only annotate: they never make a document invalid.
ANNOTATIONS = frozenset(
    {"$schema", "title", "description", "default", "discriminator", "format", "$defs"}
)
JSON_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def errors(schema: dict[str, Any], document: Any) -> list[str]:
    """Every way ``document`` breaks ``schema`` (the root, whose ``$defs`` resolve refs)."""
    return list(_check(schema, schema, document, "$"))


def _check(root: dict[str, Any], schema: dict[str, Any], value: Any, at: str) -> Iterator[str]:
    for keyword, rule in schema.items():
        if keyword in ANNOTATIONS:
            continue
        check = _KEYWORDS.get(keyword)
        if check is None:
            raise AssertionError(f"{at}: the checker does not know the keyword {keyword!r}")
        yield from check(root, schema, rule, value, at)


def _ref(root: dict[str, Any], _s: Any, rule: str, value: Any, at: str) -> Iterator[str]:
    assert rule.startswith("#/$defs/"), rule
    yield from _check(root, root["$defs"][rule.removeprefix("#/$defs/")], value, at)


def _one_of(root: dict[str, Any], _s: Any, rule: list[Any], value: Any, at: str) -> Iterator[str]:
    passed = [not list(_check(root, option, value, at)) for option in rule]
    if passed.count(True) != 1:
        yield f"{at}: matches {passed.count(True)} of oneOf, not exactly one"


def _any_of(root: dict[str, Any], _s: Any, rule: list[Any], value: Any, at: str) -> Iterator[str]:
    if not any(not list(_check(root, option, value, at)) for option in rule):
        yield f"{at}: matches none of anyOf"


def _type(_r: Any, _s: Any, rule: str, value: Any, at: str) -> Iterator[str]:
    if not JSON_TYPES[rule](value):
        yield f"{at}: not of type {rule}"


def _const(_r: Any, _s: Any, rule: Any, value: Any, at: str) -> Iterator[str]:
    if value != rule or type(value) is not type(rule):
        yield f"{at}: not {rule!r}"


def _enum(_r: Any, _s: Any, rule: list[Any], value: Any, at: str) -> Iterator[str]:
    if value not in rule:
        yield f"{at}: not one of the enum"


def _properties(
    root: dict[str, Any], _s: Any, rule: dict[str, Any], value: Any, at: str
) -> Iterator[str]:
    if isinstance(value, dict):
        for name, sub in rule.items():
            if name in value:
                yield from _check(root, sub, value[name], f"{at}.{name}")


def _required(_r: Any, _s: Any, rule: list[str], value: Any, at: str) -> Iterator[str]:
    if isinstance(value, dict):
        yield from (f"{at}.{name}: required" for name in rule if name not in value)


def _additional(_r: Any, schema: dict[str, Any], rule: Any, value: Any, at: str) -> Iterator[str]:
    assert rule is False, rule
    if isinstance(value, dict):
        extra = set(value) - set(schema.get("properties", {}))
        yield from (f"{at}: a property the schema does not list" for _ in extra)


def _items(root: dict[str, Any], _s: Any, rule: Any, value: Any, at: str) -> Iterator[str]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _check(root, rule, item, f"{at}[{index}]")


def _bound(test: Any, what: str) -> Any:
    def check(_r: Any, _s: Any, rule: Any, value: Any, at: str) -> Iterator[str]:
        measured = _measure(value, what)
        if measured is not None and not test(measured, rule):
            yield f"{at}: breaks {what} {rule}"

    return check


def _measure(value: Any, what: str) -> Any:
    """The quantity a bound keyword applies to, None when it does not apply to ``value``."""
    if what in ("minLength", "maxLength"):
        return len(value) if isinstance(value, str) else None
    if what in ("minItems", "maxItems"):
        return len(value) if isinstance(value, list) else None
    if what in ("formatMinimum", "formatExclusiveMaximum"):
        return _instant(value)
    return value if JSON_TYPES["number"](value) else None


def _instant(value: Any) -> datetime | None:
    """An aware time, or None (the pattern speaks for text that is not one)."""
    try:
        moment = datetime.fromisoformat(str(value).replace("z", "Z"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _pattern(_r: Any, _s: Any, rule: str, value: Any, at: str) -> Iterator[str]:
    if not isinstance(value, str):
        return
    ecma = rule[:-1] + r"\Z" if rule.endswith("$") and not rule.endswith(r"\$") else rule
    if re.search(ecma, value) is None:
        yield f"{at}: does not match its pattern"


_KEYWORDS: dict[str, Any] = {
    "$ref": _ref,
    "oneOf": _one_of,
    "anyOf": _any_of,
    "type": _type,
    "const": _const,
    "enum": _enum,
    "properties": _properties,
    "required": _required,
    "additionalProperties": _additional,
    "items": _items,
    "pattern": _pattern,
    "minLength": _bound(lambda n, r: n >= r, "minLength"),
    "maxLength": _bound(lambda n, r: n <= r, "maxLength"),
    "minItems": _bound(lambda n, r: n >= r, "minItems"),
    "maxItems": _bound(lambda n, r: n <= r, "maxItems"),
    "minimum": _bound(lambda n, r: n >= r, "minimum"),
    "maximum": _bound(lambda n, r: n <= r, "maximum"),
    "formatMinimum": _bound(lambda t, r: t >= _instant(r), "formatMinimum"),
    "formatExclusiveMaximum": _bound(lambda t, r: t < _instant(r), "formatExclusiveMaximum"),
}
