"""A held call in real headless Chromium: the real openai client's tool call waits in a real gateway until the
reviewer approves it on the approvals page, then reaches the agent (``tests.gateway.admin.browser``)."""

from __future__ import annotations

import concurrent.futures
import json
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import openai
import pytest

from gateway.audit.holds import HeldCallStore
from tests.gateway.admin.browser import Shots, launch, log_in, page_fixture, shots_fixture  # noqa: F401 - fixtures
from tests.gateway.stack import Stack, gateway_stack

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

POLICY = """
version: 1
name: holding
gateway:
  default_profile: agents
  profiles:
    - {name: agents, models: ["stub-*"], tools: [{name: send_email, hold: true}]}
  holds: {timeout_s: 60}
"""
ASK = [{"role": "user", "content": 'call send_email {"to": "board@example.com", "body": "minutes"}'}]
TOOLS = [{"type": "function", "function": {"name": "send_email", "parameters": {"type": "object"}}}]
DONE = {"approve": "approved", "reject": "rejected"}


@pytest.fixture(scope="module")
def holding(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A gateway that holds every send_email, in front of the scripted model."""
    with gateway_stack(tmp_path_factory.mktemp("holding"), POLICY) as stack:
        yield stack


@pytest.fixture(scope="module")
def chromium(holding: Stack) -> Iterator[Browser]:
    with launch() as browser:
        yield browser


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_held_call_waits_for_the_reviewer_who_releases_or_refuses_it(holding: Stack, page: Page, shots: Shots,
                                                                       decision: str) -> None:
    with holding.openai() as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(client.chat.completions.create, model="stub-1", messages=ASK, tools=TOOLS)
        deadline = time.monotonic() + 20
        while not (queued := HeldCallStore(holding.db).pending()):  # the reviewer opens the page once it waits
            assert time.monotonic() < deadline, f"the call was not held: {answer.done() and answer.exception()}"
            time.sleep(0.05)
        log_in(page, holding.gateway.admin_url or "", (holding.home / "admin-token").read_text().strip(), "/approvals")
        card = page.locator(f"#held-{queued[0].id}")
        text = card.inner_text()
        assert "send_email" in text and "board@example.com" in text and "policy.tool_held" in text
        assert "the model's answer proposes it" in text and not answer.done()
        shots.take(page, f"11-held-call-{decision}")
        page.on("dialog", lambda dialog: dialog.accept())  # "Approve held call 1 (send_email)?"
        card.locator(f"form.decide:has(button.{decision}) input[name=note]").fill("the board's call")
        card.locator(f"button.{decision}").click()
        page.wait_for_url(re.compile(r"/approvals\?done="))
        assert f"{DONE[decision]} held call {queued[0].id} (recorded and applied)" in page.inner_text("main")
        if decision == "approve":
            call = answer.result(timeout=20).choices[0].message.tool_calls[0]
            assert call.function.name == "send_email" and json.loads(call.function.arguments)["to"] == \
                "board@example.com"
        else:
            with pytest.raises(openai.PermissionDeniedError, match="rejected by ui session .*: the board's call"):
                answer.result(timeout=20)
    assert page.locator("#held-empty").is_visible()
    decided = page.locator("#decisions tbody tr").first.inner_text()
    assert f"hold.{DONE[decision]}" in decided and "the board's call" in decided
    shots.take(page, f"12-held-call-{DONE[decision]}")
