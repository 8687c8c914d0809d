"""The gateway end to end: the real mitmproxy, the real openai and anthropic clients, real sockets, SQLite.

A scripted upstream stands in for the model (its answers are fixed by the prompt, so tool calls are
predictable); the engine itself as an upstream is covered by ``test_up``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from sqlalchemy import select

from gateway.audit.agents import add_agent
from gateway.audit.db import AuditDatabase, open_database
from gateway.audit.models import Record, RequestIndex
from gateway.audit.state import AuditState
from gateway.audit.verify import verify_audit
from gateway.proxy import BackgroundGateway, GatewayConfig
from policies.loader import load_policy
from tests.gateway.upstream import Upstream, upstream_app
from tests.servers import BackgroundServer, free_port

POLICY = """
version: 1
name: gateway-test
gateway:
  default_profile: agents
  profiles:
    - name: agents
      models: ["stub-*"]
      tools:
        - name: get_weather
          arguments: {type: object, properties: {city: {type: string}}, required: [city], additionalProperties: false}
        - name: search
      hosts: ["127.0.0.0/8:*", "localhost:*"]
  audit: {checkpoint_every_records: 5}
"""


@dataclass
class Stack:
    gateway: BackgroundGateway
    upstream: Upstream
    key: str
    db: AuditDatabase
    home: Path

    def records(self, kind: str | None = None) -> list[Record]:
        with self.db.sessions() as session:
            query = select(Record).order_by(Record.id)
            if kind is not None:
                query = query.where(Record.kind == kind)
            return list(session.scalars(query))

    def index(self, *, complete: int | None = None) -> list[RequestIndex]:
        """The request index; with ``complete``, once that many requests have their response recorded
        (responses are recorded after they are forwarded, asynchronously)."""
        deadline = time.monotonic() + 10
        while True:
            with self.db.sessions() as session:
                rows = list(session.scalars(select(RequestIndex).order_by(RequestIndex.id)))
            if complete is None or sum(r.status is not None for r in rows) >= complete or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def openai(self, **kwargs: object) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.gateway.reverse_url}/v1", api_key=self.key, max_retries=0,
                             timeout=20, **kwargs)  # type: ignore[arg-type]


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[Stack]:
    (tmp_path / "policy.yaml").write_text(POLICY)
    record = Upstream()
    server = BackgroundServer(upstream_app(record))
    home = tmp_path / "home"
    db = open_database(None, home=home)
    key = add_agent(db, "tester").key
    config = GatewayConfig(policy=load_policy(tmp_path / "policy.yaml"), upstream=server.url,
                           reverse_listen=("127.0.0.1", free_port()), proxy_listen=("127.0.0.1", free_port()),
                           home=home, admin_listen=("127.0.0.1", free_port()))
    try:
        with BackgroundGateway(config) as gateway:
            yield Stack(gateway, record, key, db, home)
    finally:
        server.stop()
        db.close()


HELLO = [{"role": "user", "content": "What is the capital of France?"}]


def test_plain_and_streamed_chat_pass_and_are_recorded(stack: Stack) -> None:
    with stack.openai() as client:
        answer = client.chat.completions.create(model="stub-1", messages=HELLO)
        assert answer.choices[0].message.content == "Paris is the capital of France."
        streamed = client.chat.completions.create(model="stub-1", messages=HELLO, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == \
            "Paris is the capital of France."
    requests = stack.records("request")
    assert len(requests) == 2 and set(stack.upstream.ids()) == {r.request_id for r in requests}
    assert all(h.get("authorization") is None for _, _, h in stack.upstream.seen)  # the agent's key stays here
    assert [r.status for r in stack.index(complete=2)] == [200, 200]


def test_a_tool_call_the_policy_allows_reaches_the_agent(stack: Stack) -> None:
    ask = [{"role": "user", "content": 'call get_weather {"city": "Paris"}'}]
    with stack.openai() as client:
        plain = client.chat.completions.create(model="stub-1", messages=ask)
        assert plain.choices[0].message.tool_calls[0].function.name == "get_weather"  # type: ignore[index]
        streamed = [c for c in client.chat.completions.create(model="stub-1", messages=ask, stream=True) if c.choices]
        pieces = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""  # type: ignore[index,union-attr]
                         for c in streamed if c.choices[0].delta.tool_calls)
        assert json.loads(pieces) == {"city": "Paris"}


def test_a_tool_the_policy_does_not_list_is_blocked_plain_and_streamed(stack: Stack) -> None:
    ask = [{"role": "user", "content": 'call send_money {"iban": "DE89370400440532013000", "amount": 1000}'}]
    with stack.openai() as client:
        with pytest.raises(openai.PermissionDeniedError, match="send_money"):
            client.chat.completions.create(model="stub-1", messages=ask)
        with pytest.raises(openai.APIError, match="send_money"):
            for _ in client.chat.completions.create(model="stub-1", messages=ask, stream=True):
                pass
    assert [(r.decision, r.status, r.rules) for r in stack.index(complete=2)] == [
        ("block", 403, "policy.tool_not_allowed"), ("block", 200, "policy.tool_not_allowed")]


def test_invalid_tool_arguments_and_unknown_models_are_refused_before_the_upstream(stack: Stack) -> None:
    with stack.openai() as client:
        with pytest.raises(openai.PermissionDeniedError, match="model"):
            client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert stack.upstream.seen == []  # refused at the door
    assert [(r.decision, r.status) for r in stack.index(complete=1)] == [("block", 403)]


def test_a_wrong_or_missing_key_gets_401_and_nothing_is_forwarded(stack: Stack) -> None:
    with openai.OpenAI(base_url=f"{stack.gateway.reverse_url}/v1", api_key="mg-not-a-key", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError, match="agent key is not valid"):
            client.chat.completions.create(model="stub-1", messages=HELLO)
    assert httpx.post(f"{stack.gateway.reverse_url}/v1/chat/completions", json={}).status_code == 401
    assert stack.upstream.seen == []


def test_anthropic_messages_plain_streamed_and_a_blocked_tool(stack: Stack) -> None:
    client = anthropic.Anthropic(base_url=stack.gateway.reverse_url, api_key=stack.key, max_retries=0)
    answer = client.messages.create(model="stub-claude", max_tokens=64, messages=HELLO)
    assert answer.content[0].text == "Paris is the capital of France."  # type: ignore[union-attr]
    with client.messages.stream(model="stub-claude", max_tokens=64, messages=HELLO) as stream:
        assert stream.get_final_text() == "Paris is the capital of France."
    ask = [{"role": "user", "content": 'call delete_all {"confirm": true}'}]
    with pytest.raises(anthropic.PermissionDeniedError, match="delete_all"):
        client.messages.create(model="stub-claude", max_tokens=64, messages=ask)
    with pytest.raises(anthropic.APIStatusError, match="delete_all"):
        with client.messages.stream(model="stub-claude", max_tokens=64, messages=ask) as stream:
            stream.get_final_message()
    assert {r.protocol for r in stack.index(complete=4)} == {"anthropic.messages"}


def test_malformed_json_gets_a_clear_error_and_is_recorded(stack: Stack) -> None:
    reply = httpx.post(f"{stack.gateway.reverse_url}/v1/chat/completions", content=b'{"model": "stub-1", "messages":',
                       headers={"authorization": f"Bearer {stack.key}", "content-type": "application/json"})
    assert reply.status_code == 400 and "error" in reply.json()
    assert stack.upstream.seen == []
    assert [(r.decision, r.status, r.rules) for r in stack.index(complete=1)] == [
        ("block", 400, "policy.unparsable_request")]


def test_the_log_verifies_after_traffic(stack: Stack) -> None:
    with stack.openai() as client:
        for _ in range(6):
            client.chat.completions.create(model="stub-1", messages=HELLO)
    stack.index(complete=6)
    report = verify_audit(stack.db, state=AuditState.open(stack.home))
    assert report.requests == 6 and report.witness_entries
