"""The console's role boundaries (issue 13, "Done means"): every page and form of the console
× every role, and without a session, with an ended session, with a revoked key's session,
and with a form that lacks its CSRF token, through the real ASGI app on both backends.

A role outside a page's (api/console/access.py) is 403 and a form it sends changes nothing;
no session, an ended one or a revoked key's sends the browser to sign in (303); a form without
the session's CSRF token is 403 and writes nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import fastapi.routing
from fastapi.testclient import TestClient
from starlette.routing import Mount

from api.console.access import CONSOLE_ROLES
from api.console.settings import DEFAULT_SESSION_S
from ledger.clock import ManualClock
from tests.console_client import csrf_of, sign_in
from tests.fix_api import ROLES, Api
from tests.integration.test_api_queries import head

PATH_VALUES = {
    "key_id": "000000000000",
    "request_id": "exp-000000000000",
    "position": "1",
    "bag_id": "0" * 64,
}
SIGNED_IN_ONLY = {r for r, roles in CONSOLE_ROLES.items() if roles}


def console_routes(api: Api) -> list[str]:
    """``METHOD /console/path`` of every route the console serves."""
    found = []
    for route in api.client.app.routes:  # type: ignore[attr-defined]  # the app
        if isinstance(route, Mount) and route.path == "/console":
            flatten = getattr(fastapi.routing, "iter_route_contexts", None)
            for context in route.routes if flatten is None else flatten(route.routes):
                inner = getattr(context, "route", context)
                for method in sorted(getattr(inner, "methods", set()) - {"HEAD"}):
                    found.append(f"{method} /console{inner.path}")
    return found


def send(client: Any, route: str, csrf: str | None) -> Any:
    method, template = route.split(" ", 1)
    path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "none-1"), template)
    if method == "GET":
        return client.get(path, follow_redirects=False)
    data = {} if csrf is None else {"csrf": csrf}
    return client.post(path, data=data, follow_redirects=False)


def test_the_table_names_every_console_route_and_no_other(api: Api) -> None:
    assert sorted(console_routes(api)) == sorted(CONSOLE_ROLES)


def test_each_role_opens_exactly_its_pages_and_forms(api: Api) -> None:
    wrong = []
    for role in ROLES:
        csrf = sign_in(api.client, api.keys[role])
        for route in sorted(SIGNED_IN_ONLY - {"POST /console/sign-out"}):
            status = send(api.client, route, csrf).status_code
            allowed = role in CONSOLE_ROLES[route]
            fine = (status not in (303, 401, 403) and status < 500) if allowed else status == 403
            if not fine:
                wrong.append(f"{role} {route}: {status}")
    assert wrong == []


def test_without_a_session_every_page_and_form_sends_the_browser_to_sign_in(api: Api) -> None:
    api.client.cookies.clear()
    before = head(api)
    for route in sorted(SIGNED_IN_ONLY):
        answer = send(api.client, route, "not-a-token")
        assert answer.status_code == 303, route
        assert answer.headers["location"].startswith("/console/sign-in?next="), route
    assert head(api) == before


def test_an_ended_session_is_sent_to_sign_in_again(api: Api, clock: ManualClock) -> None:
    sign_in(api.client, api.keys["auditor"])
    assert api.client.get("/console/orders", follow_redirects=False).status_code == 200
    clock.advance(timedelta(seconds=DEFAULT_SESSION_S))
    ended = api.client.get("/console/orders", follow_redirects=False)
    assert ended.status_code == 303
    assert ended.headers["location"].endswith("&ended=true")
    assert "sign in again" in api.client.get(ended.headers["location"]).text


def test_a_revoked_keys_session_ends_at_once(api: Api) -> None:
    admin_csrf = sign_in(api.client, api.keys["admin"])
    created = api.client.post(
        "/console/keys", data={"csrf": admin_csrf, "role": "auditor", "name": "soon-revoked"}
    )
    key = re.search(r'<pre id="new-key">([^<]+)</pre>', created.text)
    assert key is not None, created.text
    assert "soon-revoked" in api.client.get("/console/keys").text
    assert key.group(1) not in api.client.get("/console/keys").text  # shown once only
    auditor = TestClient(api.client.app)  # another browser, signed in with the new key
    sign_in(auditor, key.group(1))
    assert auditor.get("/console/orders", follow_redirects=False).status_code == 200
    key_id = key.group(1).split("_")[1]
    revoked = api.client.post(f"/console/keys/{key_id}/revoke", data={"csrf": admin_csrf})
    assert "revoked" in revoked.text
    ended = auditor.get("/console/orders", follow_redirects=False)
    assert ended.status_code == 303
    assert ended.headers["location"].startswith("/console/sign-in")


def test_a_form_without_its_csrf_token_is_refused_and_writes_nothing(api: Api) -> None:
    for role in ROLES:
        sign_in(api.client, api.keys[role])
        before = head(api)
        for route, roles in CONSOLE_ROLES.items():
            if route.startswith("POST") and role in roles and route != "POST /console/sign-in":
                for csrf in (None, "another-sessions-token"):
                    answer = send(api.client, route, csrf)
                    assert answer.status_code == 403, (role, route, answer.status_code)
                    assert "CSRF" in answer.text
        assert head(api) == before


def test_the_sign_in_form_needs_its_own_csrf_token_and_a_live_key(api: Api) -> None:
    api.client.cookies.clear()
    form = api.client.get("/console/sign-in")
    no_token = api.client.post("/console/sign-in", data={"key": api.keys["auditor"]})
    assert no_token.status_code == 403
    for bad in ("revoked", "unknown"):
        form = api.client.get("/console/sign-in")
        refused = api.client.post(
            "/console/sign-in", data={"key": api.keys[bad], "csrf": csrf_of(form.text)}
        )
        assert refused.status_code == 401
        assert "unknown or revoked" in refused.text
        assert "ledger_console=" not in refused.headers.get("set-cookie", "")


def test_the_session_cookie_is_httponly_strict_and_secure_over_tls(api: Api) -> None:
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        client = TestClient(api.client.app, base_url=base)
        form = client.get("/console/sign-in")
        done = client.post(
            "/console/sign-in",
            data={"key": api.keys["auditor"], "csrf": csrf_of(form.text)},
            follow_redirects=False,
        )
        cookie = next(
            c for c in done.headers.get_list("set-cookie") if c.startswith("ledger_console=")
        )
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/console"} <= flags
        assert f"max-age={int(DEFAULT_SESSION_S)}" in flags
        assert ("secure" in flags) is secure
        assert api.keys["auditor"].split("_")[2] not in cookie  # the secret is never kept


def test_sign_in_goes_back_to_a_console_page_only(api: Api) -> None:
    cases = [
        ("/console/orders", "/console/orders"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/console/", "/console/"),
    ]
    for asked, lands in cases:
        api.client.cookies.clear()
        form = api.client.get("/console/sign-in")
        done = api.client.post(
            "/console/sign-in",
            data={"key": api.keys["auditor"], "csrf": csrf_of(form.text), "next": asked},
            follow_redirects=False,
        )
        assert done.headers["location"] == lands


def test_only_the_console_takes_form_bodies(api: Api) -> None:
    refused = api.client.post(
        "/v1/commands/submit_order",
        data={"order_no": "A1"},
        headers={**api.auth("service"), "Idempotency-Key": "form-1"},
    )
    assert refused.status_code == 415
    assert refused.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
