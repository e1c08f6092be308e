"""Signing in to the console the way a browser does, through the real ASGI app: the sign-in
page's CSRF token and cookie, the key POSTed as a form, the session cookie kept."""

from __future__ import annotations

import re
from typing import Any

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The first form's CSRF token on a page."""
    found = CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client: Any, key: str) -> str:
    """Sign ``client`` in with ``key`` (its cookies replaced); the session's CSRF token."""
    client.cookies.clear()
    form = client.get("/console/sign-in")
    assert form.status_code == 200, form.text
    done = client.post(
        "/console/sign-in",
        data={"key": key, "csrf": csrf_of(form.text), "next": "/console/"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    home = client.get("/console/")
    assert home.status_code == 200, home.text
    return csrf_of(home.text)
