"""The console's pages keep what the README claims for them (issue 13: "labels and keyboard
navigation for every control, Chinese and English labels"): on every page a role can open,
with its forms and results shown, every form control has a label (or an ``aria-label``),
every label, button, heading and title reads in Chinese and in English, nothing takes a
positive ``tabindex`` (the tab order is the page's order), the page says its language, and
every posted form carries its CSRF token. Through the real ASGI app on SQLite (the markup
does not depend on the backend); the browser's own checks (focus shown, a phone's width)
are in tests/e2e/test_console_browser.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from ledger.clock import ManualClock
from replay.signed_note import Signer
from tests import builders as b
from tests.console_client import sign_in
from tests.fix_api import Api
from tests.integration.test_api_queries import catch_up
from tests.integration.test_console_forms import ORIGIN, sealed_now

CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]{2}")
CONTROLS = ("input", "select", "textarea")
UNLABELLED_TYPES = ("hidden", "submit", "button")


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    label: Element | None = None  # the label it is in
    form: Element | None = None  # the form it is in


@dataclass
class Page(HTMLParser):
    """The elements of one page the checks need, with the text each holds."""

    elements: list[Element] = field(default_factory=list)
    open_: list[Element] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        element.label = next((e for e in reversed(self.open_) if e.tag == "label"), None)
        element.form = next((e for e in reversed(self.open_) if e.tag == "form"), None)
        self.elements.append(element)
        if tag not in ("input", "meta", "link", "br", "img", "option"):
            self.open_.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.open_) - 1, -1, -1):
            if self.open_[i].tag == tag:
                del self.open_[i:]
                return

    def handle_data(self, data: str) -> None:
        for element in self.open_:
            element.text += data

    def all(self, *tags: str) -> list[Element]:
        return [e for e in self.elements if e.tag in tags]


def bilingual(text: str) -> bool:
    return bool(CJK.search(text) and LATIN.search(text))


def problems_of(html: str) -> list[str]:
    page = Page()
    page.feed(html)
    found = []
    labels = {e.attrs["for"]: e for e in page.all("label") if e.attrs.get("for")}
    [root] = page.all("html")
    if root.attrs.get("lang") != "zh-CN":
        found.append("the page does not say its language")
    for element in page.all(*CONTROLS):
        if element.attrs.get("type") in UNLABELLED_TYPES:
            continue
        name = element.attrs.get("name")
        label = labels.get(element.attrs.get("id", "")) or element.label
        if label is None and not element.attrs.get("aria-label"):
            found.append(f"{element.tag} {name} has no label")
        elif label is not None and not bilingual(label.text):
            found.append(f"the label of {name} is not in Chinese and English: {label.text!r}")
    for element in page.all("button", "h1", "title"):
        said = element.attrs.get("aria-label") or element.text
        if not bilingual(said):
            found.append(f"{element.tag} is not in Chinese and English: {said.strip()!r}")
    for element in page.elements:
        if int(element.attrs.get("tabindex", "0") or "0") > 0:
            found.append(f"{element.tag} takes a positive tabindex")
    tokens = [
        e.form for e in page.all("input") if e.attrs.get("name") == "csrf" and e.attrs["value"]
    ]
    for form in page.all("form"):
        if form.attrs.get("method") == "post" and not any(form is t for t in tokens):
            found.append(f"the form to {form.attrs.get('action')} has no CSRF token")
    return found


@pytest.fixture
def backend(tmp_path: Path) -> str:
    """SQLite only: the markup is the same on either backend."""
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def pages(api: Api, clock: ManualClock) -> dict[str, list[tuple[str, Any]]]:
    """Every page each role opens, with its forms' results: (path, answer) per role."""
    b_order = b.submit("A11Y-1")
    api.command(b_order)
    api.command(b.pay("A11Y-1"))
    signer = Signer.generate(ORIGIN)
    first = sealed_now(api, clock, signer)
    api.command(b.submit("A11Y-2"))
    second = sealed_now(api, clock, signer)
    catch_up(api.url)
    shown: dict[str, list[tuple[str, Any]]] = {}
    for role in ("service", "auditor", "regulator", "admin"):
        csrf = sign_in(api.client, api.keys[role])
        gets = [
            "/console/",
            "/console/orders",
            "/console/orders?account_no=acct-1",
            "/console/orders/A11Y-1",
            "/console/orders/A11Y-1/timeline",
            f"/console/integrity?position=1&old_size={first.size}&new_size={second.size}",
            "/console/projections",
            "/console/exports",
            "/console/subjects?subject_id=acct-1",
            "/console/keys",
            "/console/no-such-page",
        ]
        answers = [(path, api.client.get(path)) for path in gets]
        posts = {
            "auditor": ["/console/orders/A11Y-1/contact", "/console/integrity/verify"],
            "service": ["/console/orders/A11Y-1/contact"],
            "admin": ["/console/subjects/acct-1/access-copy", "/console/keys"],
        }
        for path in posts.get(role, []):
            data = {"csrf": csrf, "role": "auditor", "name": f"a11y-{role}"}
            answers.append((f"POST {path}", api.client.post(path, data=data)))
        shown[role] = [(p, a) for p, a in answers if a.status_code != 403]
    api.client.cookies.clear()
    shown["nobody"] = [("/console/sign-in", api.client.get("/console/sign-in"))]
    return shown


def test_every_control_on_every_page_is_labelled_in_both_languages(
    pages: dict[str, list[tuple[str, Any]]],
) -> None:
    found = []
    for role, answers in pages.items():
        for path, answer in answers:
            assert answer.status_code in (200, 404), (role, path, answer.status_code)
            found += [f"{role} {path}: {p}" for p in problems_of(answer.text)]
    assert found == []
    assert sum(len(answers) for answers in pages.values()) > 30  # every role saw its pages


def test_the_checks_find_what_they_look_for() -> None:
    bad = """<html><head><title>Orders</title></head><body><h1>订单</h1>
    <form method="post"><label>Name <input name="name"></label><select id="s"></select>
    <input id="k" name="key"><label for="k">Key</label>
    <button tabindex="2">查找</button></form></body></html>"""
    assert sorted(problems_of(bad)) == sorted(
        [
            "the page does not say its language",
            "the label of name is not in Chinese and English: 'Name '",
            "select None has no label",
            "the label of key is not in Chinese and English: 'Key'",
            "button is not in Chinese and English: '查找'",
            "h1 is not in Chinese and English: '订单'",
            "title is not in Chinese and English: 'Orders'",
            "button takes a positive tabindex",
            "the form to None has no CSRF token",
        ]
    )
