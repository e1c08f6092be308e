"""Every request, seen from outside the app: a request id, one log line, the HTTP metrics, and
the answer to anything unforeseen.

- **Request id.** ``X-Request-Id`` as sent when it is 1-64 characters of ``A-Z a-z 0-9 . _ :
  -`` (so it is safe in a log and a header), else a new one (32 hex digits). It is in
  ``request.state.request_id`` and echoed in the response's ``X-Request-Id``.
- **Log.** One line per request on the ``api.request`` logger (JSON under ``ledger serve``,
  api/logs.py): ``method``, ``route`` (the template, never the raw path), ``status``,
  ``duration_ms``, ``request_id``, ``key_id`` and ``role`` (when a key was accepted). Never
  the body, the query or a header's value: they may hold personal data.
- **Metrics.** ``ledger_http_requests_total`` and ``ledger_http_request_duration_seconds``
  by route template (api/metrics.py).
- **Unforeseen errors.** An exception no handler took becomes a 500 problem naming the
  request id, and is logged by its type and code locations only (api/logs.py): it is caught
  here, so it never reaches the server's own logger, which would print its text.

A plain ASGI middleware, outermost but for Starlette's error middleware, so it also sees the
refusals of api/limits.py.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from starlette.routing import compile_path

from api.limits import App, Message, Receive, Scope, Send
from api.logs import FIELDS, frames
from api.metrics import UNMATCHED, Metrics
from api.problems import unexpected

REQUEST_ID_HEADER = b"x-request-id"
# Methods named in logs and labels as sent; any other is "other" (a label's values stay few).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_ID_PATTERN = "^[A-Za-z0-9._:-]{1,64}$"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN.encode())
log = logging.getLogger("api.request")


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-Id`` if it is safe to repeat, else a new one."""
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER and _REQUEST_ID.match(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


class RouteTemplates:
    """The route template of a request, never its raw path (which holds ids): the route the
    router matched, or, for a refusal that came before routing (a 413, a 415), the first
    path of the app's OpenAPI document that the path fits; else ``unmatched``."""

    def __init__(self) -> None:
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None

    def of(self, scope: Scope) -> str:
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str):  # under a mount (the console), its prefix first
            mount: str = scope.get("root_path", "")[len(scope.get("app_root_path", "")) :]
            return mount + path
        if self._compiled is None:
            paths = scope["app"].openapi().get("paths", {})
            self._compiled = [(compile_path(template)[0], template) for template in paths]
        for pattern, template in self._compiled:
            if pattern.match(scope["path"]):
                return template
        return UNMATCHED


class Observe:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: App, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope["headers"])
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        started = time.perf_counter()
        status: int | None = None

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (REQUEST_ID_HEADER, rid.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # noqa: BLE001 - answered here, logged without its text
            log.error(
                "unexpected %s",
                type(exc).__name__,
                extra={FIELDS: {"request_id": rid, "frames": frames(exc.__traceback__)}},
            )
            if status is None:
                await unexpected(rid, scope["path"])(scope, receive, sending)
        finally:
            self._observed(scope, status, time.perf_counter() - started)

    def _observed(self, scope: Scope, status: int | None, duration_s: float) -> None:
        """The request's log line and metrics; a request whose client left before any
        answer is logged with ``status`` null and not counted."""
        route = self.routes.of(scope)
        method = scope["method"] if scope["method"] in METHODS else "other"
        actor = scope["state"].get("actor")
        log.info(
            "request",
            extra={
                FIELDS: {
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration_s * 1000, 3),
                    "request_id": scope["state"]["request_id"],
                    "key_id": getattr(actor, "key_id", None),
                    "role": getattr(actor, "role", None),
                }
            },
        )
        if status is not None:
            self.metrics.observe_request(method, route, status, duration_s)
