"""Bounds on what a request may send, checked before anything is parsed.

- A body over ``max_body_bytes`` (default 1 MiB) is refused ``REQUEST_TOO_LARGE`` (413):
  by its ``Content-Length`` before a byte is read, or, sent chunked, as soon as the bytes
  read pass the limit; it is never held whole in memory.
- A request with a body that is not ``application/json`` (``+json`` suffixes and a
  ``charset=utf-8`` parameter are taken) is refused ``UNSUPPORTED_MEDIA_TYPE`` (415); under
  ``/console/`` (the console's HTML forms, api/console/) ``application/x-www-form-urlencoded``
  is taken too.
- JSON nests at most ``MAX_DEPTH`` levels (``INVALID_JSON``, 400): deep nesting costs the
  parser and no command needs it; an object with a repeated key is refused too, as the
  import refuses it (RFC 8259 leaves its meaning open; orjson would keep the last silently).

A plain ASGI middleware, so it sees the stream before FastAPI reads it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from api.errors import InvalidJson, RequestTooLarge, UnsupportedMediaType
from api.problems import refusal
from ledger.domain.errors import LedgerError
from ledger.importer import REPEATED_KEY, repeats_a_key

DEFAULT_MAX_BODY_BYTES = 1 << 20
MAX_DEPTH = 32
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
FORMS_UNDER = "/console/"
FORM_MEDIA = b"application/x-www-form-urlencoded"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Exceeded(Exception):
    pass


class BodyLimits:
    """ASGI middleware: size and media type of request bodies (see the module docstring)."""

    def __init__(self, app: App, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WITH_BODY:
            await self.app(scope, receive, send)
            return
        try:
            self.check_headers(dict(scope["headers"]), scope["path"].startswith(FORMS_UNDER))
        except LedgerError as exc:
            await refusal(exc, scope["path"])(scope, receive, send)
            return
        await self._bounded(scope, receive, send)

    def check_headers(self, headers: dict[bytes, bytes], forms: bool = False) -> None:
        """Refuse a body too large or of a media type not taken (``forms``: a console form's
        too)."""
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            raise RequestTooLarge(f"the body is over {self.max_body_bytes} bytes")
        if length == b"0" and b"content-type" not in headers:
            return  # an empty body needs no type; the route says what it lacks
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if forms and media == FORM_MEDIA:
            pass  # a console form: its fields are parsed by api/console/forms.py
        elif media != b"application/json" and not media.endswith(b"+json"):
            raise UnsupportedMediaType("the body must be application/json")
        charset = _charset(headers.get(b"content-type", b""))
        if charset not in (None, b"utf-8"):
            raise UnsupportedMediaType("the body must be JSON in UTF-8")

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise _Exceeded
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _Exceeded:
            if not started:
                exc = RequestTooLarge(f"the body is over {self.max_body_bytes} bytes")
                await refusal(exc, scope["path"])(scope, receive, send)


def _charset(content_type: bytes) -> bytes | None:
    for part in content_type.split(b";")[1:]:
        name, _, value = part.partition(b"=")
        if name.strip().lower() == b"charset":
            return value.strip().strip(b'"').lower()
    return None


def parse_json(body: bytes) -> Any:
    """The body as JSON (orjson: UTF-8 only, no NaN or Infinity, no lone surrogates), at
    most ``MAX_DEPTH`` deep; ``InvalidJson`` otherwise. An empty body is ``{}``."""
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidJson("the body is not valid JSON in UTF-8") from None
    check_depth(data)
    if repeats_a_key(body, data):  # orjson keeps the last value silently; the import refuses
        raise InvalidJson(f"the body has {REPEATED_KEY}")
    return data


def check_depth(data: Any) -> None:
    """Iteratively (no recursion to exhaust): ``InvalidJson`` past ``MAX_DEPTH`` levels."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise InvalidJson(f"the body nests deeper than {MAX_DEPTH} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
