"""Stored bodies read back by the gateway's own parsers, and saying so when they cannot be."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.admin.exchange import read_exchange

CHAT = {"request_id": "r1", "agent": "a", "direction": "reverse", "method": "POST", "scheme": "http",
        "host": "127.0.0.1", "port": 8000, "path": "/v1/chat/completions",
        "headers": [["content-type", "application/json"]], "body": {"truncated": False}}
ANSWER = {"status": 200, "headers": [["content-type", "application/json"]], "body": {"truncated": False}}


def test_a_chat_turn_and_its_tool_call_read_back() -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"},
                                                 {"role": "tool", "tool_call_id": "c0", "content": "result text"}]})
    answer = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "send_email", "arguments": '{"to": "x@y"}'}}]},
        "finish_reason": "tool_calls"}]})
    exchange = read_exchange(CHAT, body.encode(), ANSWER, answer.encode())
    assert exchange.notes == ()
    assert exchange.request is not None and [m.role for m in exchange.request.messages] == ["user", "tool"]
    assert exchange.request.tool_results[0].content == "result text"
    assert exchange.response is not None and exchange.response.tool_calls[0].arguments == {"to": "x@y"}


def test_missing_capped_and_broken_bodies_are_said_not_guessed() -> None:
    nothing = read_exchange(CHAT, None, ANSWER, None)
    assert nothing.request is None and nothing.notes == ("the request body was not stored",)
    capped = read_exchange(CHAT | {"body": {"truncated": True, "stored_size": 10, "size": 99}}, b'{"model": "m", "m',
                           ANSWER, None)
    assert capped.notes[0] == ("the request body was capped at 10 of 99 bytes: what follows is parsed from the part "
                               "kept")
    assert capped.request is not None and capped.request.parse_error and "the request body:" in capped.notes[1]
    assert capped.notes[2].startswith("the response body was not stored")
    broken = read_exchange(CHAT | {"headers": "not a list"}, b"\xff\xfe", None, None)
    assert broken.request is not None and broken.response is None


@settings(max_examples=200)
@given(st.binary(max_size=400), st.binary(max_size=400), st.sampled_from(["/v1/chat/completions", "/v1/messages",
                                                                         "/mcp", "/anything"]))
def test_any_stored_bytes_read_back_or_say_why(request_body: bytes, response_body: bytes, path: str) -> None:
    exchange = read_exchange(CHAT | {"path": path}, request_body, ANSWER, response_body)
    assert exchange.request is not None  # parsed, or opaque with its parse error noted
    if exchange.request.parse_error:
        assert any(n.startswith("the request body:") for n in exchange.notes)
