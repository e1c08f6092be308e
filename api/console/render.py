"""Pages: Jinja2 templates (api/console/templates, autoescaped), the filters every page uses,
and errors as pages.

Times are shown in China time (the agreement's, Asia/Shanghai) in a ``<time>`` element whose
``datetime`` and ``title`` (shown on hover) are the UTC instant; money is shown in yuan from
fen. Labels are Chinese and English side by side.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException

from api.console.access import NAV
from api.errors import Unauthenticated
from ledger.domain.china_time import CHINA
from ledger.domain.errors import LedgerError, StorageUnavailable
from ledger.sealing import is_token

HERE = Path(__file__).parent
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
RETRY_AFTER_S = 1


def when(moment: Any) -> Markup:
    """A ``<time>``: China time shown, the UTC instant in ``datetime`` and on hover."""
    if moment is None or moment == "":
        return Markup("—")
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    utc = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    shown = moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
    return Markup('<time datetime="{0}" title="UTC {0}">{1}</time>').format(utc, shown)


def yuan(fen: Any) -> str:
    """``399900`` → ``¥3,999.00``."""
    if fen is None:
        return "—"
    sign = "-" if int(fen) < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


SEALED = "[sealed 已加密]"


def readable(value: Any) -> Any:
    """``value`` with every sealed token (ledger/sealing.py) replaced by ``[sealed 已加密]``:
    a token's text is ciphertext and its subject id, nothing a reader can use."""
    if is_token(value):
        return SEALED
    if isinstance(value, dict):
        return {k: readable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [readable(v) for v in value]
    return value


def shown(value: Any) -> Markup | str:
    """A state field for people: ``—`` for none, yes/no for flags, nested values as JSON
    (not Python's reprs), sealed tokens as ``[sealed 已加密]``."""
    value = readable(value)
    if value is None or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "是 yes" if value else "否 no"
    if isinstance(value, dict | list):
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()
        return Markup("<pre>{}</pre>").format(text)
    return str(value)


TEMPLATES.filters["when"] = when
TEMPLATES.filters["shown"] = shown
TEMPLATES.filters["yuan"] = yuan
TEMPLATES.globals["NAV"] = NAV


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered for this request (its session and actor, if any)."""
    actor = getattr(request.state, "actor", None)
    session = getattr(request.state, "session", None)
    shared = {"request": request, "actor": actor, "csrf": None if session is None else session.csrf}
    html = TEMPLATES.get_template(template).render({**shared, **context})
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": CSP, "Referrer-Policy": "same-origin",
               "X-Frame-Options": "DENY"}  # fmt: skip
    return HTMLResponse(html, status, headers=headers)


# Everything the pages load is the app's own; no script runs at all.
CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " \
      "frame-ancestors 'none'; base-uri 'none'"  # fmt: skip


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    """An error as a page: its status, the catalogue's code, the message (never a value)."""
    response = page(request, "error.html", status, code=code, message=message)
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def install_errors(app: FastAPI) -> None:
    """The console's errors as pages; no session sends the browser to sign in."""
    from api.console.session import SessionEnded, sign_in_location

    async def on_ledger_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LedgerError)
        if isinstance(exc, Unauthenticated) and request.url.path.rstrip("/") != "/console/sign-in":
            ended = isinstance(exc, SessionEnded)
            return RedirectResponse(sign_in_location(request, ended), status_code=303)
        status = 503 if isinstance(exc, StorageUnavailable) else int(exc.entry.status)
        return error_page(request, status, exc.code, exc.message)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {"loc": (), "msg": ""}
        name = ".".join(str(part) for part in first["loc"][1:]) or "query"
        rule = str(first["msg"]).lower() or "is not valid"
        return error_page(request, 400, "INVALID_PARAMETER", f"{name}: {rule}")

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = "NOT_FOUND" if exc.status_code == 404 else "INVALID_PARAMETER"
        message = "no such page" if exc.status_code == 404 else str(escape(exc.detail))
        return error_page(request, exc.status_code, code, message)

    app.add_exception_handler(LedgerError, on_ledger_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
