"""Held calls end to end: a real gateway in front of the scripted model, the real openai client and a real MCP
server; the call waits, a reviewer decides through ``modelgate calls`` (the admin API, or the database), and
the agent gets the call or a clear error; nobody deciding refuses it; a restart expires what was held.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import openai
import pytest
from mcp import ClientSession, McpError
from mcp.client.streamable_http import streamable_http_client
from mcp.server.fastmcp import FastMCP
from sqlalchemy import select

import modelgate.cli
from gateway.audit.agents import add_agent
from gateway.audit.db import open_database
from gateway.audit.holds import HeldCall, HeldCallStore
from gateway.audit.models import Record
from gateway.proxy import BackgroundGateway, GatewayConfig
from policies.loader import load_policy
from tests.gateway.stack import Stack, gateway_stack
from tests.servers import BackgroundServer, free_port

POLICY = """
version: 1
name: holds
gateway:
  default_profile: agents
  profiles:
    - name: agents
      models: ["stub-*"]
      tools:
        - name: get_weather
        - name: send_email
          hold: true
      hosts: ["127.0.0.0/8:*"]
  holds: {timeout_s: %s}
"""
SEND = [{"role": "user", "content": 'call send_email {"to": "cfo@example.com", "body": "Q3 figures"}'}]
TOOLS: Any = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
              for n in ("get_weather", "send_email")]


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[Stack]:
    with gateway_stack(tmp_path, POLICY % 30) as running:
        yield running


def pending(where: Stack | HeldCallStore) -> list[HeldCall]:
    """The held calls, once one waits (the agent's call is in flight on another thread)."""
    store = where if isinstance(where, HeldCallStore) else HeldCallStore(where.db)
    deadline = time.monotonic() + 20
    while not (found := store.pending()):
        assert time.monotonic() < deadline, "no call was held"
        time.sleep(0.05)
    return found


def hold_events(stack: Stack) -> list[dict[str, Any]]:
    data = [json.loads(r.data) for r in stack.records("event")]
    return [d for d in data if d["event"].startswith("hold.")]


def cli(capsys: pytest.CaptureFixture[str], *args: object, rc: int = 0) -> dict[str, Any]:
    """``modelgate ARGS --json`` through the real entry point: its JSON answer, once its exit code is ``rc``."""
    capsys.readouterr()
    code = modelgate.cli.main([str(a) for a in (*args, "--json")])
    out = capsys.readouterr()
    assert code == rc, out.err or out.out
    return dict(json.loads(out.out))


def in_background(fn: Callable[[], Any]) -> concurrent.futures.Future[Any]:
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(fn)
    pool.shutdown(wait=False)
    return future


def test_a_held_call_approved_through_the_cli_reaches_the_agent_and_the_log_says_so(
        stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    with stack.openai() as client:
        answer = in_background(lambda: client.chat.completions.create(model="stub-1", messages=SEND, tools=TOOLS))
        (held,) = pending(stack)
        assert held.stage == "response" and held.agent == "tester" and held.calls[0]["name"] == "send_email"
        assert json.loads(held.calls[0]["arguments"]) == {"to": "cfo@example.com", "body": "Q3 figures"}
        assert held.reasons[0]["rule"] == "policy.tool_held" and not answer.done()
        decided = cli(capsys, "calls", "approve", held.id, "--home", stack.home, "--admin-url",
                      stack.gateway.admin_url, "--note", "expected report")
        assert decided["decided"] == f"through {stack.gateway.admin_url}" and decided["recorded"] is True
        call = answer.result(timeout=20).choices[0].message.tool_calls[0]
    assert call.function.name == "send_email" and json.loads(call.function.arguments)["to"] == "cfo@example.com"
    (event,) = hold_events(stack)
    assert event["event"] == "hold.approved" and event["details"]["id"] == held.id
    assert event["details"]["decided_by"].startswith("api ") and event["details"]["note"] == "expected report"
    (row,) = stack.index(complete=1)
    kinds = [(r.kind, json.loads(r.data).get("event")) for r in stack.records()]
    assert kinds.index(("event", "hold.approved")) < kinds.index(("response", None))  # recorded, then released
    assert row.decision == "hold" and row.status == 200 and "policy.tool_held" in row.rules
    assert HeldCallStore(stack.db).get(held.id).status == "approved"
    headers = {"Authorization": f"Bearer {(stack.home / 'admin-token').read_text().strip()}", "Accept": "text/html"}
    with httpx.Client(base_url=stack.gateway.admin_url or "", headers=headers) as admin:
        detail = admin.get(f"/requests/{row.id}").text
        story = admin.get("/session", params={"id": row.session}).text
    assert "Held for a reviewer by" in detail and f"held call {held.id}: approved by api" in detail
    assert "hold.approved" in detail  # the outcome's record sits in the request's chain
    assert f"hold.approved held call {held.id} (send_email) by api " in story


def test_a_streamed_answer_is_held_whole_and_a_decision_in_the_database_is_seen(
        stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    def ask() -> str:
        with stack.openai() as client:
            chunks = list(client.chat.completions.create(model="stub-1", messages=SEND, tools=TOOLS, stream=True))
        return "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""  # type: ignore[index,union-attr]
                       for c in chunks if c.choices and c.choices[0].delta.tool_calls)

    answer = in_background(ask)
    (held,) = pending(stack)
    decided = cli(capsys, "calls", "approve", held.id, "--home", stack.home, "--admin-url",
                  f"http://127.0.0.1:{free_port()}")  # nothing listens: the decision goes to the database
    assert decided["decided"] == "directly" and decided["recorded"] is False
    assert json.loads(answer.result(timeout=20)) == {"to": "cfo@example.com", "body": "Q3 figures"}
    (event,) = hold_events(stack)
    assert event["event"] == "hold.approved" and event["details"]["decided_by"].startswith("cli ")


def test_a_rejected_call_gives_the_agent_a_clear_error(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    with stack.openai() as client:
        answer = in_background(lambda: client.chat.completions.create(model="stub-1", messages=SEND, tools=TOOLS))
        (held,) = pending(stack)
        cli(capsys, "calls", "reject", held.id, "--home", stack.home, "--admin-url", stack.gateway.admin_url,
            "--note", "not this recipient")
        with pytest.raises(openai.PermissionDeniedError, match="rejected by api .*: not this recipient") as refused:
            answer.result(timeout=20)
    assert f"held call {held.id}" in str(refused.value)
    (event,) = hold_events(stack)
    assert event["event"] == "hold.rejected"
    (row,) = stack.index(complete=1)
    assert (row.decision, row.status) == ("block", 403)
    late = cli(capsys, "calls", "approve", held.id, "--home", stack.home, "--admin-url", stack.gateway.admin_url, rc=2)
    assert late["error"] == "DetectionError" and "no longer waiting: rejected by api" in late["reason"]


def test_nobody_deciding_refuses_the_call_when_it_expires(tmp_path: Path) -> None:
    with gateway_stack(tmp_path, POLICY % 1.5) as stack, stack.openai() as client:
        started = time.monotonic()
        with pytest.raises(openai.PermissionDeniedError, match=r"expired.*no decision within 1.5s"):
            client.chat.completions.create(model="stub-1", messages=SEND, tools=TOOLS)
        assert 1.4 < time.monotonic() - started < 15
        (event,) = hold_events(stack)
        assert event["event"] == "hold.expired" and event["details"]["decided_by"] == "gateway"
        assert HeldCallStore(stack.db).pending() == []


def test_a_tool_that_is_not_held_streams_through_untouched(stack: Stack) -> None:
    ask = [{"role": "user", "content": 'call get_weather {"city": "Paris"}'}]
    with stack.openai() as client:  # offers only get_weather: nothing can be held, so the answer streams live
        chunks = list(client.chat.completions.create(model="stub-1", messages=ask, tools=TOOLS[:1], stream=True))
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.tool_calls) > 2
    assert hold_events(stack) == []


def test_a_hold_in_a_live_stream_is_refused_as_it_cannot_wait(stack: Stack) -> None:
    with stack.openai() as client:  # only get_weather is offered, so the answer streams live; the model calls
        stream = client.chat.completions.create(model="stub-1", messages=SEND, tools=TOOLS[:1], stream=True)
        with pytest.raises(openai.APIError, match="a live stream cannot wait for a reviewer"):
            list(stream)  # send_email anyway: held, so refused
    assert HeldCallStore(stack.db).pending() == [] and hold_events(stack) == []


def test_an_mcp_call_is_held_before_it_reaches_the_server_and_a_restart_expires_what_was_held(
        tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(POLICY % 30)
    home = tmp_path / "home"
    db = open_database(None, home=home)
    key = add_agent(db, "tester").key
    sent: list[str] = []
    server = FastMCP("mail", stateless_http=True)

    @server.tool(description="Send an email.")
    def send_email(to: str, body: str) -> str:
        sent.append(to)
        return f"sent to {to}"

    def config(mcp: BackgroundServer) -> GatewayConfig:
        return GatewayConfig(policy=load_policy(tmp_path / "policy.yaml"), upstream="http://127.0.0.1:9",
                             reverse_listen=("127.0.0.1", free_port()), proxy_listen=("127.0.0.1", free_port()),
                             admin_listen=("127.0.0.1", free_port()), home=home)

    def call(gateway: BackgroundGateway, to: str) -> str:
        async def run() -> str:
            host, port = gateway.config.proxy_listen or ("", 0)
            async with httpx.AsyncClient(proxy=f"http://tester:{key}@{host}:{port}", timeout=60) as http, \
                    streamable_http_client(f"http://127.0.0.1:{mcp.port}/mcp", http_client=http) as (
                        read, write, _), ClientSession(read, write) as session:
                await session.initialize()
                try:
                    result = await session.call_tool("send_email", {"to": to, "body": "hi"})
                except McpError as exc:
                    return f"refused: {exc}"
                return result.content[0].text  # type: ignore[union-attr]

        return anyio.run(run)

    store = HeldCallStore(db)
    token = home / "admin-token"
    with BackgroundServer(server.streamable_http_app(), lifespan="on") as mcp:
        with BackgroundGateway(config(mcp)) as gateway:
            admin = httpx.Client(base_url=gateway.admin_url or "", timeout=20,
                                 headers={"Authorization": f"Bearer {token.read_text().strip()}"})
            first = in_background(lambda: call(gateway, "ok@example.com"))
            (held,) = pending(store)
            assert held.stage == "request" and sent == []  # the server has not seen it
            assert admin.post("/api/calls/approve", data={"id": held.id, "who": "reviewer"}).json()["recorded"]
            assert first.result(timeout=20) == "sent to ok@example.com" and sent == ["ok@example.com"]
            second = in_background(lambda: call(gateway, "evil@example.com"))
            (held,) = pending(store)
            assert admin.post("/api/calls/reject", data={"id": held.id, "note": "exfiltration"}).status_code == 200
            refused = second.result(timeout=20)
            assert refused.startswith("refused:") and "rejected" in refused and "exfiltration" in refused
            third = in_background(lambda: call(gateway, "late@example.com"))
            (stale,) = pending(store)
            admin.close()
        with pytest.raises(ExceptionGroup) as cut:  # the gateway stopped: the waiting call's connection is gone
            third.result(timeout=20)
        assert cut.group_contains(httpx.RemoteProtocolError) and store.get(stale.id).status == "pending"
        with BackgroundGateway(config(mcp)):  # the same state folder: the same instance
            assert store.get(stale.id).status == "expired"
            assert store.get(stale.id).note == "the gateway restarted while it was held"
    assert sent == ["ok@example.com"]
    with db.sessions() as session:
        events = [json.loads(d)["event"] for d in session.scalars(select(Record.data).where(Record.kind == "event"))]
    assert [e for e in events if e.startswith("hold.")] == ["hold.approved", "hold.rejected", "hold.expired"]
    db.close()
