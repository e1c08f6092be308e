"""Signing in to the console: an API key exchanged for a session cookie, and every page's
check of that session and of its role (issue 13, "Sign-in").

**The session is a sealed cookie, not a server-side record.** ``ledger_console`` holds the
key's id, its role, when the session ends and the session's CSRF token, sealed with AES-256-GCM
(``cryptography``, through api/pages.py's ``PageTokens``) under a key derived from the ledger's
stored linkage key with the label ``mall-ledger/console/session/v1``: every server process of
one ledger opens every other's sessions, also after a restart, and nobody can read, alter or
forge one. The API key itself is never kept: it is checked once, at sign-in. Each request
then checks that the key id is still issued, unrevoked and of the same role (the API's key
cache: a revoked key ends its sessions within ``key_cache_s``), then the page's roles with
the API's own check (api/auth.py ``admit``, table api/console/access.py).

- **Cookie**: ``HttpOnly``, ``SameSite=Strict``, ``Path=/console``, ``Secure`` when the request
  came over TLS (``https``, also behind a proxy uvicorn trusts), ``Max-Age`` the lifetime.
- **Lifetime**: ``session_s`` (default one hour) from sign-in by the ledger's clock, then the
  next page sends the browser back to sign-in. Signing out deletes the cookie; a copy of it
  taken before stays valid until its end (there is no server-side record to delete) unless
  the key is revoked, which is how an admin ends every session of a key at once.
- **CSRF**: every form carries the session's token in a hidden ``csrf`` field, compared in
  constant time with the sealed one (a synchroniser token; SameSite=Strict besides); the
  sign-in form carries one sealed in a short-lived cookie of its own. A form without it, or
  with another session's, is 403 ``FORBIDDEN`` and changes nothing.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from api.auth import KeyCache, admit
from api.console.access import roles_of
from api.console.forms import Form, read_form
from api.console.render import HERE, page
from api.console.settings import ConsoleSettings
from api.errors import Forbidden, InvalidParameter, Unauthenticated
from api.pages import PageTokens, derive_key
from ledger.api_keys import authenticate, live_actor
from ledger.domain.context import Actor
from ledger.domain.errors import LedgerError

COOKIE = "ledger_console"
SIGN_IN_COOKIE = "ledger_console_sign_in"
SESSION_LABEL = b"mall-ledger/console/session/v1"
SESSION_SCOPE, SIGN_IN_SCOPE = "console-session", "console-sign-in"
SIGN_IN_FORM_S = 900  # a sign-in form is good for 15 minutes
CSRF_BYTES = 18
HOME = "/console/"
STATIC = HERE / "static"
router = APIRouter()


class SessionEnded(Unauthenticated):
    """The session's time is up: sign in again (401, shown as the sign-in page)."""


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the key's ``actor``, when it ends, its CSRF token."""

    actor: Actor
    ends_at: datetime
    csrf: str


def _tokens(request: Request) -> PageTokens:
    """The sealer of sessions, made once per app from the ledger's linkage key."""
    state = request.app.state
    sealer: PageTokens | None = getattr(state, "console_sealer", None)
    if sealer is None:
        sealer = PageTokens(derive_key(state.ledger.keystore.linkage_key(), SESSION_LABEL))
        state.console_sealer = sealer
    return sealer


def _now(request: Request) -> datetime:
    moment: datetime = request.app.state.ledger.clock.now()  # the injected clock
    return moment


def _settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.console
    return settings


def _open(request: Request, name: str, scope: str) -> list[Any] | None:
    """The sealed values of cookie ``name``, or None if absent or not ours."""
    token = request.cookies.get(name)
    if not token:
        return None
    try:
        values = _tokens(request).open(scope, token)
    except InvalidParameter:
        return None
    return values if isinstance(values, list) else None


def current_session(request: Request) -> Session:
    """The request's session; ``Unauthenticated`` without one, ``SessionEnded`` past its end."""
    values = _open(request, COOKIE, SESSION_SCOPE)
    if values is None or len(values) != 4:
        raise Unauthenticated("sign in with an API key")
    key_id, role, ends_at, csrf = values
    ends = datetime.fromisoformat(ends_at)
    if _now(request) >= ends:
        raise SessionEnded("the session has ended: sign in again")
    return Session(Actor(key_id, role), ends, csrf)


async def viewer(request: Request) -> Actor:
    """A dependency of every console page and form: the signed-in key's actor, if its role
    may use this route (api/console/access.py). Raises ``Unauthenticated`` (no session, or
    its key revoked or changed), ``SessionEnded``, ``Forbidden``."""
    session = current_session(request)
    cache: KeyCache = request.app.state.keys
    actor = live_actor(await cache.current(), str(session.actor.key_id))
    if actor is None or actor.role != session.actor.role:
        raise Unauthenticated("the session's API key is revoked: sign in with another")
    request.state.actor = actor  # the request's log line names the key
    request.state.session = session
    route = request.scope.get("route")
    template = "/console" + str(getattr(route, "path", request.url.path))
    return admit(actor, roles_of(f"{request.method} {template}"))


Viewer = Annotated[Actor, Depends(viewer)]


async def checked_form(request: Request) -> Form:
    """The POSTed form of a signed-in page, once its CSRF token is the session's; raises
    ``Forbidden`` (changing nothing) if it is missing or another's."""
    form = await read_form(request)
    session: Session = request.state.session
    sent = form.get("csrf") or ""
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise Forbidden("the form's CSRF token is missing or not this session's: reload the page")
    return form


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _next_page(value: str | None) -> str:
    """Where to go after signing in: a console page, never elsewhere (no open redirect)."""
    if value and value.startswith("/console/") and "//" not in value and "\\" not in value:
        return value
    return HOME


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str | None = None, ended: bool = False) -> Any:
    """The sign-in form: an API key and a CSRF token sealed in a cookie of its own."""
    return _sign_in_page(request, next, "ended" if ended else None)


def _sign_in_page(
    request: Request, next: str | None, notice: str | None, error: LedgerError | None = None
) -> Response:
    csrf = secrets.token_urlsafe(CSRF_BYTES)
    ends = _now(request) + timedelta(seconds=SIGN_IN_FORM_S)
    response = page(
        request,
        "sign_in.html",
        401 if error is not None else 200,
        csrf=csrf,
        next=_next_page(next),
        notice=notice,
        error=error,
        lifetime_min=int(_settings(request).session_s // 60),
    )
    sealed = _tokens(request).seal(SIGN_IN_SCOPE, [csrf, ends.isoformat()])
    set_cookie(request, response, SIGN_IN_COOKIE, sealed, SIGN_IN_FORM_S)
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Any:
    """Exchange the form's API key for a session; the form again, 401, if it is not one."""
    form = await read_form(request)
    values = _open(request, SIGN_IN_COOKIE, SIGN_IN_SCOPE)
    sent = (form.get("csrf") or "").encode()
    fresh = values is not None and len(values) == 2
    fresh = fresh and _now(request) < datetime.fromisoformat(str(values[1]))  # type: ignore[index]
    if not fresh or not hmac.compare_digest(sent, str(values[0]).encode()):  # type: ignore[index]
        raise Forbidden("the sign-in form's CSRF token is missing or stale: reload the page")
    cache: KeyCache = request.app.state.keys
    registry = await run_in_threadpool(cache.registry)
    actor = authenticate(registry, (form.get("key") or "").strip())
    if actor is None:
        refused = Unauthenticated("the API key is unknown or revoked")
        return _sign_in_page(request, form.get("next"), None, refused)
    lifetime_s = _settings(request).session_s
    ends = _now(request) + timedelta(seconds=lifetime_s)
    sealed = _tokens(request).seal(
        SESSION_SCOPE,
        [actor.key_id, actor.role, ends.isoformat(), secrets.token_urlsafe(CSRF_BYTES)],
    )
    response = RedirectResponse(_next_page(form.get("next")), status_code=303)
    set_cookie(request, response, COOKIE, sealed, int(lifetime_s))
    response.delete_cookie(SIGN_IN_COOKIE, path="/console")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, actor: Viewer) -> Any:
    """End the session in this browser (the cookie deleted)."""
    await checked_form(request)
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/console", secure=request.url.scheme == "https",
                           httponly=True, samesite="strict")  # fmt: skip
    return response


@router.get("/")
async def home(request: Request, actor: Viewer) -> Any:
    """What this role may open."""
    return page(request, "home.html")


def sign_in_location(request: Request, ended: bool) -> str:
    """The sign-in page, coming back to this one (a GET) afterwards."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = back if request.method == "GET" else HOME
    return f"/console/sign-in?next={quote(target, safe='')}" + ("&ended=true" if ended else "")


@router.get("/console.css")
async def style_sheet() -> Response:
    """The one style sheet (no session needed: it holds no data)."""
    return _static("console.css", "text/css; charset=utf-8")


@router.get("/icon.svg")
async def icon() -> Response:
    """The tab's icon, so the browser asks for nothing the app lacks."""
    return _static("icon.svg", "image/svg+xml")


def _static(name: str, media_type: str) -> Response:
    content = (STATIC / name).read_bytes()
    return Response(content, media_type=media_type, headers={"Cache-Control": "max-age=3600"})
