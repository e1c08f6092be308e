"""The console in a real browser (issue 13, "Done means"): headless Chromium against a real
``ledger serve`` on the demo's ledger, sealed, on SQLite and on PostgreSQL.

Every page the journeys open is checked for a server error, a broken link and a console
message (tests/e2e/browser.py). The journeys run in this file's order on one server per
backend; the tamper journey changes the log, so it is last.
"""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.context import LOCAL_ACTOR, Actor
from ledger.domain.export_request import ExportScope
from tests.e2e.browser import Browser, chromium, require_browser
from tests.e2e.test_cli_newcomer import clean_env
from tests.e2e.test_serve import Server, serving
from tests.fix_app import opened_ledger, opened_runtime

TAMPERED_POSITION = 42
ORDER = "demo1-000003"


def ledger_cli(cwd: Path, url: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args, "--database-url", url],
        cwd=cwd, env=clean_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture(
    scope="module",
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)],
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The demo's ledger (20 orders), projected and sealed, with two export requests (one
    filed by the regulator's key, one from the command line), served by ``ledger serve``."""
    require_browser()
    where = tmp_path_factory.mktemp(f"console-{request.param}")
    url = (
        f"sqlite:///{where / 'ledger.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url_module")
    )
    ledger_cli(where, url, "demo", "--orders", "20")
    ledger_cli(where, url, "projections", "run", "--once")
    with serving(where, url) as server:
        regulator = Actor(server.keys["regulator"].split("_")[1], "regulator")
        with opened_ledger(url) as ledger:
            from replay.export import request_export

            own = request_export(ledger, regulator, "SAMR", "samr-2026-7", "ECL 25",
                                 ExportScope(seller="xiaomi-self"), False)  # fmt: skip
            other = request_export(ledger, LOCAL_ACTOR, "CAC", "cac-2026-1", "PIPL", ExportScope(),
                                   False)  # fmt: skip
        ledger_cli(where, url, "seal")
        with projecting(where, url):  # as deployed: a worker keeps the read models current
            yield server, url, own, other


@contextmanager
def projecting(cwd: Path, url: str) -> Iterator[None]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "cli", "projections", "run", "--database-url", url],
        cwd=cwd, env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)


@pytest.fixture(scope="module")
def browser(served: Any) -> Iterator[Browser]:
    server: Server = served[0]
    with chromium() as driver:
        yield Browser(driver, server.base)


def sign_in(browser: Browser, server: Server, role: str) -> None:
    browser.driver.delete_all_cookies()
    browser.open("/console/sign-in")
    browser.fill({"key": server.keys[role]})
    from selenium.webdriver.common.keys import Keys

    browser.follow(lambda: browser.by_id("key").send_keys(Keys.ENTER))


def test_each_role_signs_in_and_sees_its_own_menu(browser: Browser, served: Any) -> None:
    server = served[0]
    menus = {
        "service": ["Orders"],
        "auditor": ["Orders", "Integrity", "Projections", "Exports", "Personal data"],
        "regulator": ["Integrity", "Exports"],
        "admin": ["Projections", "Exports", "Personal data", "Keys"],
    }
    for role, menu in menus.items():
        sign_in(browser, server, role)
        assert f"the {role} role" in browser.text()
        shown = [a.text.split(" ", 1)[1] for a in browser.css("nav a")]
        assert shown == menu
        browser.follow(browser.css("form.who button")[0].click)  # sign out
        assert browser.driver.current_url.endswith("/console/sign-in")
        browser.open("/console/orders")
        assert "/console/sign-in?next=" in browser.driver.current_url


def test_an_auditor_finds_a_demo_order_and_steps_its_timeline(
    browser: Browser, served: Any
) -> None:
    sign_in(browser, served[0], "auditor")
    browser.open("/console/orders")
    browser.fill({"order_no": ORDER})
    browser.follow(browser.by_id("order_no").submit)
    assert f"Order {ORDER}" in browser.text()
    assert "Money per payment method" in browser.text()
    browser.open(f"/console/orders/{ORDER}/timeline")
    rows = browser.css("tbody tr")
    assert len(rows) >= 3
    last = browser.css("tr.current td")[1].text
    assert browser.css("tr.current")[0] == rows[-1]
    for _ in range(2):
        browser.follow(browser.css("a[rel=prev]")[0].click)
    now = browser.css("tr.current td")[1].text
    assert int(now) < int(last)
    assert f"as of position {now}" in browser.text()
    assert browser.css("tr.current time")[0].get_attribute("title").startswith("UTC ")
    browser.follow(browser.css("a[rel=next]")[0].click)
    assert int(browser.css("tr.current td")[1].text) > int(now)


def test_a_regulator_sees_only_its_own_export_and_downloads_it(
    browser: Browser, served: Any
) -> None:
    server, _, own, other = served
    sign_in(browser, server, "regulator")
    browser.open("/console/exports")
    assert own in browser.text() and other not in browser.text()
    browser.follow(browser.css(f"tr[id='{own}'] button")[0].click)
    assert "written from the checkpoint" in browser.by_id("outcome").text
    link = browser.css(f"tr[id='{own}'] a[download]")[0].get_attribute("href")
    assert "verify_export.py" in browser.text()
    with browser.session_client() as client:
        fetched = client.get(link)
        assert fetched.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(fetched.content)) as bag:
            names = bag.getnames()
        assert any(name.endswith("data/manifest.json") for name in names)
        assert client.get(f"/console/exports/{other}/bags/{'0' * 64}").status_code == 404


def test_an_admin_places_a_hold_and_sees_an_erasure_refused(browser: Browser, served: Any) -> None:
    server = served[0]
    sign_in(browser, server, "auditor")
    browser.open(f"/console/orders/{ORDER}")
    subject = re.search(r"Account\n?(\S+)", browser.text())
    account = browser.css("dl.facts dd")[1].text if subject is None else subject.group(1)
    sign_in(browser, server, "admin")
    browser.open(f"/console/subjects?subject_id={account}")
    browser.fill({"hold-reference": "court-2026-1"})
    browser.submit("place-hold")
    assert "recorded at position" in browser.by_id("outcome").text
    assert "court-2026-1" in browser.text()
    browser.submit("request-erasure")
    assert "LEGAL_HOLD" in browser.by_id("outcome").text
    browser.open("/console/projections")
    assert "caught up" in browser.text() or "behind" in browser.text()
    browser.open("/console/keys")
    assert "test-auditor" in browser.text()


PHONE = (390, 844)  # CSS pixels: a common phone's viewport
LAPTOP = (1280, 1000)
FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea"
NO_SIDEWAYS_SCROLL = "return document.documentElement.scrollWidth <= window.innerWidth"


def test_the_pages_fit_a_phone_and_the_keyboard_reaches_every_control_with_focus_shown(
    browser: Browser, served: Any
) -> None:
    server, url = served[0], served[1]
    if not url.startswith("sqlite"):
        pytest.skip("the layout does not depend on the backend: checked once, on SQLite")
    sign_in(browser, server, "auditor")
    browser.open(f"/console/orders/{ORDER}")
    account = browser.css("dl.facts dd")[1].text
    browser.driver.set_window_size(*PHONE)
    try:
        assert browser.driver.execute_script("return window.innerWidth") <= PHONE[0]
        wide = []
        auditor = ["/console/", "/console/orders?status=delivered", f"/console/orders/{ORDER}",
                   f"/console/orders/{ORDER}/timeline", "/console/integrity?position=7",
                   "/console/projections", f"/console/subjects?subject_id={account}"]  # fmt: skip
        admin = ["/console/keys", "/console/exports", f"/console/subjects?subject_id={account}"]
        for role, paths in (("auditor", auditor), ("admin", admin)):
            sign_in(browser, server, role)
            for path in paths:
                browser.open(path)
                if not browser.driver.execute_script(NO_SIDEWAYS_SCROLL):
                    wide.append(path)
        assert wide == [], "these pages scroll sideways on a phone"
        walk_by_keyboard(browser)
    finally:
        browser.driver.set_window_size(*LAPTOP)


def walk_by_keyboard(browser: Browser) -> None:
    """From the top of the admin's subject page, Tab reaches the skip link first (shown when
    focused), then every control in the page's order, each with a visible focus outline."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    script = browser.driver.execute_script
    controls = script(f"return [...document.querySelectorAll('{FOCUSABLE}')]"
                      ".filter(e => e.offsetParent !== null || e.matches('.skip'))")  # fmt: skip
    script("document.activeElement.blur(); window.scrollTo(0, 0)")
    reached, unseen = [], []
    for _ in controls:
        ActionChains(browser.driver).send_keys(Keys.TAB).perform()
        element = script("return document.activeElement")
        reached.append(element)
        style = script("const s = getComputedStyle(arguments[0]); "
                       "return [s.outlineStyle, parseFloat(s.outlineWidth)]", element)  # fmt: skip
        left = script("return arguments[0].getBoundingClientRect().left", element)
        if style[0] == "none" or style[1] < 2 or left < 0:
            unseen.append(element.get_attribute("outerHTML")[:80])
    assert reached[0].get_attribute("class") == "skip"
    assert reached == controls, "Tab does not follow the page's order"
    assert unseen == [], "focused without a visible outline"


def test_an_auditor_verifies_the_log_then_sees_a_tampered_row_named(
    browser: Browser, served: Any
) -> None:
    server, url = served[0], served[1]
    sign_in(browser, server, "auditor")
    browser.open("/console/integrity?position=7")
    assert "c2sp.org/tlog-proof@v1" in browser.by_id("inclusion-proof").text
    browser.open("/console/integrity")
    assert "valid" in browser.text()
    browser.submit("verify-now")
    assert "INTACT" in browser.by_id("verdict").text and "NOT" not in browser.by_id("verdict").text
    assert "rows checked" in browser.text()
    with opened_runtime(url) as rt:
        with rt.db.snapshot() as cur:
            row = rt.db.fetch_rows(cur, TAMPERED_POSITION - 1, 1, None)[0]
        with rt.db.write() as cur:
            sql = f"UPDATE {rt.db.events_table} SET state = %s WHERE {rt.db.id_column} = %s"
            cur.execute(rt.db.sql(sql), (bytes(row.state or b"") + b" ", TAMPERED_POSITION))
    browser.open("/console/integrity")
    browser.submit("verify-now")
    assert "NOT INTACT" in browser.by_id("verdict").text
    assert browser.by_id("bad-position").text == str(TAMPERED_POSITION)
