"""Bad input through the real gateway: each gets a clear error, is recorded, and the gateway goes on serving.

The profile's ``max_request_bytes`` (4 KiB) is below mitmproxy's ``body_size_limit`` (the largest profile
limit, 64 KiB here), so both refusals are reachable: the policy's 413, and mitmproxy's own, which the
gatekeeper records although its ``request`` hook never ran.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from gateway.audit.state import AuditState
from gateway.audit.verify import verify_audit
from tests.gateway.stack import Stack, gateway_stack

POLICY = """
version: 1
name: malformed-test
gateway:
  profiles:
    - name: default
      models: ["stub-*"]
      tools: [{name: get_weather}]
      max_request_bytes: 4096
      max_response_bytes: 65536
"""
HELLO = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[Stack]:
    with gateway_stack(tmp_path, POLICY) as running:
        yield running
        assert_still_serving(running)
        verify_audit(running.db, state=AuditState.open(running.home))


def assert_still_serving(stack: Stack) -> None:
    with stack.openai() as client:
        assert client.chat.completions.create(model="stub-1", messages=HELLO).choices[0].message.content == \
            "Paris is the capital of France."


def post(stack: Stack, body: bytes) -> httpx.Response:
    return httpx.post(stack.chat_url, content=body, headers=stack.auth | {"content-type": "application/json"},
                      timeout=20)


def chat_body(content: str) -> bytes:
    return json.dumps({"model": "stub-1", "messages": [{"role": "user", "content": content}]}).encode()


def test_a_body_over_the_profiles_limit_gets_413_and_is_recorded(stack: Stack) -> None:
    body = chat_body("x" * 5000)
    reply = post(stack, body)
    assert reply.status_code == 413 and "exceeds 4096" in reply.json()["error"]["message"]
    assert stack.upstream.seen == []
    (row,) = stack.index(complete=1)
    assert (row.decision, row.status, row.rules, row.request_size) == ("block", 413, "policy.request_too_large",
                                                                       len(body))


def test_a_body_over_the_proxys_limit_is_refused_by_mitmproxy_and_recorded(stack: Stack) -> None:
    reply = post(stack, chat_body("x" * 70_000))
    assert reply.status_code == 413 and "body_size_limit" in reply.text
    assert stack.upstream.seen == []
    (row,) = stack.index(complete=1)
    assert (row.decision, row.status, row.rules, row.agent) == ("block", 413, "gateway.refused_by_proxy", "tester")
    (request,) = stack.records("request")
    assert "body_size_limit" in json.loads(request.data)["parse_error"]


def test_an_answer_over_the_proxys_limit_is_refused_and_recorded(stack: Stack) -> None:
    reply = post(stack, chat_body("answer at length 70000"))
    assert reply.status_code == 502 and "body_size_limit" in reply.text
    (row,) = stack.index(complete=1)
    assert (row.status, row.request_id) == (502, stack.upstream.ids()[0])
    (response,) = stack.records("response")
    assert "body_size_limit" in json.loads(response.data)["error"]


def test_invalid_utf8_in_a_json_body_gets_400_and_is_recorded(stack: Stack) -> None:
    reply = post(stack, b'{"model": "stub-1", "messages": [{"role": "user", "content": "caf\xe9 \xff"}]}')
    assert reply.status_code == 400 and "UTF-8" in reply.json()["error"]["message"]
    assert stack.upstream.seen == []
    (row,) = stack.index(complete=1)
    assert (row.decision, row.status, row.rules) == ("block", 400, "policy.unparsable_request")


@pytest.mark.parametrize(("prompt", "why", "delivered"), [
    ("break the stream", "malformed stream", "Paris "),
    ("cut the call", "the stream ended before a tool call in it was complete", ""),
])
def test_a_broken_event_stream_ends_in_an_error_for_the_agent_and_the_record_says_why(
        stack: Stack, prompt: str, why: str, delivered: str) -> None:
    received: list[openai.types.chat.ChatCompletionChunk] = []
    with stack.openai() as client, pytest.raises(openai.APIError, match=why):
        for chunk in client.chat.completions.create(model="stub-1", messages=[{"role": "user", "content": prompt}],
                                                    stream=True):
            received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == delivered
    assert not any(c.choices[0].delta.tool_calls for c in received if c.choices)  # the cut call was held back
    (row,) = stack.index(complete=1)
    assert row.status == 200 and row.request_id == stack.upstream.ids()[0]
    (response,) = stack.records("response")
    assert json.loads(response.data)["parse_error"].startswith(why)


def test_an_agent_that_hangs_up_half_way_through_a_stream_is_recorded_with_what_it_got(stack: Stack) -> None:
    with stack.openai() as client:
        stream = client.chat.completions.create(model="stub-1", messages=[{"role": "user", "content": "hang on"}],
                                                stream=True)
        text = ""
        for chunk in stream:
            text += (chunk.choices[0].delta.content or "") if chunk.choices else ""
            if text:
                break
        stream.close()
    assert text == "Paris "
    (row,) = stack.index(complete=1)
    assert row.status == 200 and row.request_id == stack.upstream.ids()[0]  # what the agent was answered
    (response,) = stack.records("response")
    data = json.loads(response.data)
    assert "disconnected" in data["error"] and data["body_size"] > 0 and data["finish_reason"] is None
