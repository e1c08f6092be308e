"""The console's forms: ``application/x-www-form-urlencoded`` bodies (what an HTML form
sends; api/limits.py bounds their size), and the text fields they and the query strings
carry, checked by the same rules the API's parameters follow."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from pydantic import TypeAdapter, ValidationError

from api.errors import InvalidParameter
from ledger.domain.china_time import CHINA

MAX_FIELDS = 20
Form = dict[str, str]


async def read_form(request: Request) -> Form:
    """The form's fields (the last of a repeated name); ``InvalidParameter`` naming ``form``
    for a body that is not UTF-8 or has too many fields."""
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise InvalidParameter("form", f"must be UTF-8 with at most {MAX_FIELDS} fields") from None
    return dict(pairs)


def field(value: str | None, name: str, rule: Any) -> Any:
    """``value`` checked by ``rule`` (an annotated type of api/queries.py), None when empty
    (an HTML form sends every field, filled or not); ``InvalidParameter`` naming ``name``,
    never echoing the value."""
    if value is None or not value.strip():
        return None
    try:
        return TypeAdapter(rule).validate_python(value.strip())
    except ValidationError as exc:
        message = exc.errors(include_input=False, include_url=False)[0]["msg"]
        raise InvalidParameter(name, message.lower()) from None


def moment(value: str | None, name: str) -> datetime | None:
    """A time field: RFC 3339 with an offset, or a browser's ``datetime-local`` value
    (``2026-03-02T09:00``), which the console reads as China time as it shows it."""
    if value is None or not value.strip():
        return None
    try:
        found = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidParameter(name, "must be a date and time, 2026-03-02T09:00") from None
    return found if found.tzinfo is not None else found.replace(tzinfo=CHINA)
