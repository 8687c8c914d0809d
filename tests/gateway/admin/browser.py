"""Real headless Chromium for the admin UI's browser tests: Debian's ``chromium`` driven by Playwright.

A test module imports these fixtures (``page``, ``shots``) and defines ``chromium`` itself, after the
gateway it drives: one gateway per module, since mitmproxy's masters share process-wide state and two
cannot run at once.
Console errors fail a test: a script or style the CSP blocks shows up there. Nothing is installed here:
without ``/usr/bin/chromium`` (``make browser``) importing this skips the module, saying so. Screenshots go
under ``$MODELGATE_ARTIFACTS`` (else a temporary folder), whose path is printed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["Shots", "launch", "log_in", "page_fixture", "shots_fixture"]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium chromium-driver, or "
                "`make browser`) to run the admin UI's browser tests", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (test extra)")


class Shots:
    """Where screenshots go; the path is printed once, whatever pytest captures."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def take(self, page: Page, name: str) -> None:
        page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module", name="shots")
def shots_fixture(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Shots:
    base = Path(os.environ["MODELGATE_ARTIFACTS"]) if os.environ.get("MODELGATE_ARTIFACTS") else \
        tmp_path_factory.mktemp("artifacts")
    folder = Shots(base / "admin-ui-screenshots")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\nadmin UI screenshots: {folder.folder}")
    return folder


@contextmanager
def launch() -> Iterator[Browser]:
    """Chromium, once the module's gateway runs: Playwright's sync API keeps an event loop on this thread."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(name="page")
def page_fixture(chromium: Browser) -> Iterator[Page]:
    """A fresh browser profile (no cookie) whose console errors fail the test."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == [], f"the browser console reported errors: {errors}"


def log_in(page: Page, admin_url: str, token: str, path: str = "/") -> None:
    page.goto(f"{admin_url}{path}")
    page.fill("#secret", token)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(re.escape(path) + "$"))
