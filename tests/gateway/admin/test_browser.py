"""The admin UI in real headless Chromium (Debian's ``chromium``, driven by Playwright) against a real gateway.

The gateway runs on a seeded audit log; each test logs in through the form like a person, uses the
pages (filters, a detail, a session, an approval, a verification), checks what they show, and saves a
screenshot of every page (``tests.gateway.admin.browser``: where they go, and why the tests skip
without Debian's chromium).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from gateway.proxy import BackgroundGateway, GatewayConfig
from policies.loader import shipped_policy
from tests.gateway.admin.browser import Shots, launch, page_fixture, shots_fixture  # noqa: F401 - fixtures
from tests.gateway.admin.browser import log_in as log_in_to
from tests.gateway.admin.seed import HIJACK, MCP_SERVER, seed
from tests.servers import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundGateway, str]]:
    home = tmp_path_factory.mktemp("browser") / "home"
    seed(f"sqlite:///{home / 'audit.db'}", home)
    config = GatewayConfig(policy=shipped_policy("dev"), upstream="http://127.0.0.1:9", home=home,
                           reverse_listen=("127.0.0.1", free_port()), proxy_listen=None,
                           admin_listen=("127.0.0.1", free_port()))
    with BackgroundGateway(config) as running:
        yield running, (home / "admin-token").read_text().strip()


@pytest.fixture(scope="module")
def chromium(gateway: tuple[BackgroundGateway, str]) -> Iterator[Browser]:
    """Started after the gateway: seeding runs an event loop on this thread, as Playwright's sync API does."""
    with launch() as browser:
        yield browser


def log_in(page: Page, gateway: tuple[BackgroundGateway, str], path: str = "/") -> None:
    running, token = gateway
    log_in_to(page, running.admin_url or "", token, path)


def test_without_the_credential_nothing_is_served(chromium: Browser, gateway: tuple[BackgroundGateway, str],
                                                 shots: Shots) -> None:
    context = chromium.new_context()
    page = context.new_page()
    running, _token = gateway
    page.goto(f"{running.admin_url}/requests?agent=research-bot")
    assert "/login?next=%2Frequests%3Fagent%3Dresearch-bot" in page.url
    assert page.request.get(f"{running.admin_url}/static/admin.css").status == 401
    assert page.request.get(f"{running.admin_url}/metrics").status == 401
    page.fill("#secret", "a guess")
    page.click("form button[type=submit]")
    assert "that is not the admin token or password" in page.inner_text(".error")
    shots.take(page, "01-login-refused")
    context.close()


def test_every_page_loads_with_what_a_reviewer_needs(page: Page, gateway: tuple[BackgroundGateway, str],
                                                   shots: Shots) -> None:
    log_in(page, gateway)
    running, _token = gateway
    assert page.inner_text("#kpi-requests") == "43" and page.inner_text("#kpi-blocked") == "5"
    assert page.locator("svg.chart").count() == 3
    shots.take(page, "02-dashboard")
    page.click("nav >> text=Requests")
    assert page.locator("#requests tbody tr.row").count() == 43
    shots.take(page, "03-requests")
    page.click("nav >> text=Models")
    assert page.locator(".badge.simulated").inner_text() == "SIMULATED"
    shots.take(page, "04-models")
    page.click("nav >> text=Integrity")
    page.click("#verify-now")
    page.wait_for_selector("#verify-result", timeout=30_000)
    assert page.inner_text("#verify-result").startswith("OK: every record")
    shots.take(page, "05-integrity")


def test_filters_a_detail_and_the_session_story(page: Page, gateway: tuple[BackgroundGateway, str],
                                               shots: Shots) -> None:
    log_in(page, gateway, "/requests")
    page.fill("input[name=agent]", "research-bot")
    page.select_option("select[name=decision]", "block")
    page.click("text=Apply")
    page.wait_for_url(re.compile(r"agent=research-bot"))
    rows = page.locator("#requests tbody tr.row")
    assert rows.count() == 2 and "decision=block" in page.url
    shots.take(page, "06-requests-filtered")
    page.click("#requests tbody tr.row >> nth=1 >> td >> nth=2")  # a cell, not a link: the row opens itself
    page.wait_for_url(re.compile(r"/requests/\d+$"))
    assert "Blocked by" in page.inner_text("#decision")
    mark = page.locator('#response_body mark.ev[data-finding="3"]').first
    assert mark.inner_text() == "exfil@evil.example"
    page.click('button.jump[data-finding="3"]')
    assert "focus" in (page.locator("mark.ev.focus").first.get_attribute("class") or "")
    assert page.locator("#chain tbody tr").count() == 2
    shots.take(page, "07-detail")
    page.click("#session-link")
    page.wait_for_url(re.compile(r"/session\?id=" + HIJACK))
    story = page.inner_text("#timeline")
    assert story.index("tool result") < story.index("proposes send_email") < story.index("MCP tools/call")
    shots.take(page, "08-session")
    page.goto(f"{gateway[0].admin_url}/requests")
    page.fill("#q", "hijack-3")
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"q=hijack-3"))
    assert page.locator("#requests tbody tr.row").count() == 1


def test_approving_a_quarantined_tool(page: Page, gateway: tuple[BackgroundGateway, str], shots: Shots) -> None:
    log_in(page, gateway, "/approvals")
    card = page.locator("#pending article")
    assert card.count() == 1 and "send_email" in card.inner_text() and MCP_SERVER in card.inner_text()
    assert "archive@evil.example" in card.locator("ins").inner_text()
    shots.take(page, "09-approvals")
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmation: "Approve send_email of ...?"
    card.locator("form.decide >> nth=0 >> input[name=note]").fill("confirmed with the mail team")
    card.locator("button.approve").click()
    page.wait_for_url(re.compile(r"/approvals\?done="))
    assert "Done: approved send_email" in page.inner_text("main")
    assert page.locator("#queue-empty").is_visible()
    decision = page.locator("#decisions tbody tr").first
    assert "approval.granted" in decision.inner_text() and "confirmed with the mail team" in decision.inner_text()
    shots.take(page, "10-approved")
