"""A real headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by
Selenium, for the console's browser tests; and the checks every page gets: no server error,
no broken link, nothing in the browser's console.

Without the browser the tests skip with the reason, except under ``CI=true`` (where .ci/run
installs it) where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
PAGE_WAIT_S = 60
SCREENSHOTS_ENV = "LEDGER_CONSOLE_SCREENSHOTS"  # a directory: each page visited is saved there


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMEDRIVER, CHROMIUM):
        if not (Path(path).exists() or shutil.which(Path(path).name)):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


def require_browser() -> None:
    reason = missing_browser()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true needs the browser: {reason}")
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium with its console log kept (``goog:loggingPrefs``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--lang=zh-CN"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(shutil.which("chromedriver") or CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


# Every link's written and resolved address, read in one script: reading element by element
# races a page the browser is still replacing ("node does not belong to the document").
LINKS_SCRIPT = (
    "return Array.from(document.querySelectorAll('a[href], link[href]'))"
    ".map(a => [a.getAttribute('href'), a.href])"
)


@dataclass
class Browser:
    """The driver against one server at ``base``; links already found good are not asked
    again."""

    driver: Any
    base: str
    checked: set[str] = field(default_factory=set)

    def open(self, path: str) -> None:
        self.driver.get(urljoin(self.base, path))
        self.check_page()

    def by_id(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def css(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def submit(self, button_id: str) -> None:
        """Press a form's button (by keyboard: Enter on the focused control) and check the
        page it leads to."""
        from selenium.webdriver.common.keys import Keys

        self.follow(lambda: self.by_id(button_id).send_keys(Keys.ENTER))

    def follow(self, action: Callable[[], Any]) -> None:
        """Do ``action`` (a click, a key) that loads another page, wait until the page it
        was on is gone, and check the new one. A key press or click returns before the
        browser navigates: checking at once would read the old page's links as they vanish
        (a stale element) or check the old page instead of the new."""
        from selenium.webdriver.support.expected_conditions import staleness_of
        from selenium.webdriver.support.wait import WebDriverWait

        before = self.driver.find_element("tag name", "html")
        action()
        WebDriverWait(self.driver, PAGE_WAIT_S).until(staleness_of(before))
        WebDriverWait(self.driver, PAGE_WAIT_S).until(
            lambda driver: driver.execute_script("return document.readyState") == "complete"
        )
        self.check_page()

    def fill(self, values: dict[str, str]) -> None:
        for element_id, value in values.items():
            box = self.by_id(element_id)
            box.clear()
            box.send_keys(value)

    def text(self) -> str:
        return str(self.driver.find_element("tag name", "body").text)

    def check_page(self) -> None:
        """No server error, no console message, every same-site link answering."""
        body = self.driver.page_source
        assert "Internal Server Error" not in body and "LEDGER_ERROR" not in body, body[-2000:]
        errors = [e for e in self.driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert errors == [], errors
        self.check_links()
        self.screenshot()

    def check_links(self) -> None:
        cookies = {c["name"]: c["value"] for c in self.driver.get_cookies()}
        here = self.driver.current_url
        with httpx.Client(cookies=cookies, timeout=30) as client:
            for raw, absolute in self.driver.execute_script(LINKS_SCRIPT):
                if raw.startswith("#"):
                    continue  # within this page (the skip link)
                href = urljoin(here, absolute)
                if urlsplit(href).netloc != urlsplit(self.base).netloc or href in self.checked:
                    continue
                if "/bags/" in urlsplit(href).path:
                    continue  # a download: fetched by its own test
                status = client.get(href).status_code
                assert status < 400, f"{href} on {here} answered {status}"
                self.checked.add(href)

    def screenshot(self) -> None:
        where = os.environ.get(SCREENSHOTS_ENV)
        if not where:
            return
        path = urlsplit(self.driver.current_url).path.strip("/").replace("/", "-") or "console"
        path = re.sub(r"exp-[0-9a-f]{12}", "request", path)  # one name per page, every run
        Path(where).mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(Path(where) / f"{path}.png"))

    def session_client(self) -> httpx.Client:
        """An HTTP client holding the browser's cookies (to fetch a download)."""
        cookies = {c["name"]: c["value"] for c in self.driver.get_cookies()}
        return httpx.Client(base_url=self.base, cookies=cookies, timeout=60)
