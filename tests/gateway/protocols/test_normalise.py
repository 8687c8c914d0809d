"""The front door: any request becomes an event (never an exception), any answer a ResponseEvent."""

from __future__ import annotations

import doctest
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gateway.protocols
from gateway.protocols import (
    Headers,
    Limits,
    RawRequest,
    RawResponse,
    error_reply,
    normalise_request,
    normalise_response,
)

JSON = {"content-type": "application/json"}
MCP = {**JSON, "mcp-protocol-version": "2025-06-18", "mcp-session-id": "abc"}


def event(path: str = "/v1/chat/completions", headers: dict[str, str] | None = None, body: bytes = b"",
          method: str = "POST"):
    raw = RawRequest(method, "https", "api.example.com", 443, path, Headers(headers or JSON), body)
    return normalise_request(raw, request_id="r1", agent="bot", direction="reverse")


def test_the_package_example_runs() -> None:
    assert doctest.testmod(gateway.protocols, raise_on_error=True).attempted > 0


def test_an_invalid_session_header_is_a_parse_error_and_the_session_is_derived() -> None:
    body = b'{"messages": [{"role": "user", "content": "hi"}]}'
    got = event(headers={**JSON, "x-modelgate-session": "bad value"}, body=body)
    assert "X-Modelgate-Session" in got.parse_error and got.session.startswith("conv-")
    assert event(headers={**JSON, "x-modelgate-session": "job-1"}, body=body).session == "job-1"


def test_undecodable_path_bytes_are_replaced_not_stored_as_surrogates() -> None:
    got = event(path="/files/\udcff\udcfe", headers={}, method="GET")
    assert got.path == "/files/\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd"
    got.model_dump_json().encode("utf-8")


def test_mcp_get_stream_has_no_body_to_parse() -> None:
    got = event("/mcp", MCP, method="GET")
    assert (got.protocol, got.parse_error, got.mcp_method) == ("mcp", None, None)


def test_mcp_batch_is_refused_with_a_reason() -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}}
    got = event("/mcp", MCP, json.dumps([call, call]).encode())
    assert got.protocol == "mcp" and "batch of 2 messages" in got.parse_error


def test_mcp_non_call_requests_keep_their_params_as_text_for_detectors() -> None:
    got = event("/mcp", MCP, b'{"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "file:///e"}}')
    assert (got.mcp_method, got.mcp_id, got.messages[0].text) == ("resources/read", 2, '{"uri":"file:///e"}')


def test_mcp_buffered_responses() -> None:
    request = event("/mcp", MCP, b'{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}')
    listing = b'{"jsonrpc": "2.0", "id": 2, "result": {"tools": [{"name": "t", "inputSchema": {}}]}}'
    as_json = normalise_response(RawResponse(200, Headers(JSON), listing), request)
    as_sse = normalise_response(RawResponse(200, Headers({"content-type": "text/event-stream"}),
                                            b"event: message\r\ndata: " + listing + b"\r\n\r\n"), request)
    assert as_json.tools == as_sse.tools and as_json.tools[0].server == "api.example.com/mcp"
    wrong = normalise_response(RawResponse(200, Headers(JSON), listing.replace(b'"id": 2', b'"id": 3')), request)
    assert "no response with id 2" in wrong.parse_error and wrong.error is None
    accepted = normalise_response(RawResponse(202, Headers({}), b""), event("/mcp", MCP, b'{"jsonrpc": "2.0", '
                                                                              b'"method": "notifications/x"}'))
    assert (accepted.status, accepted.error, accepted.parse_error) == (202, None, None)


def test_a_response_over_the_limit_is_not_parsed() -> None:
    request = event(body=b'{"messages": []}')
    raw = RawResponse(200, Headers(JSON), b'{"choices": []}' + b" " * 100)
    assert "over the 50-byte limit" in normalise_response(raw, request, limits=Limits(max_body_bytes=50)).parse_error


@pytest.mark.parametrize(("path", "headers", "body", "content_type"), [
    ("/v1/chat/completions", JSON, b'{"messages": []}', "application/json"),
    ("/v1/messages", {**JSON, "anthropic-version": "2023-06-01"}, b'{"messages": []}', "application/json"),
    ("/mcp", MCP, b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}', "application/json"),
    ("/upload", {}, b"", "application/json"),
])
def test_error_reply_for_every_protocol_is_json(path, headers, body, content_type) -> None:
    reply = error_reply(event(path, headers, body), 403, "refused by policy")
    assert reply.headers() == {"content-type": content_type}
    assert "refused by policy" in json.dumps(json.loads(reply.body))


_headers = st.dictionaries(
    st.sampled_from(["content-type", "anthropic-version", "mcp-session-id", "mcp-protocol-version", "accept",
                     "x-modelgate-session"]),
    st.sampled_from(["application/json", "2023-06-01", "s1", "text/event-stream", "bad value", "text/plain"]),
    max_size=4)
_bodies = st.binary(max_size=300) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["jsonrpc", "id", "method", "params", "messages", "role", "content", "type", "text", "tools", "name",
         "system", "prompt", "arguments", "tool_calls", "function"]), inner, max_size=5), max_leaves=20).map(
    lambda v: json.dumps(v).encode())


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["GET", "POST", "DELETE"]),
       st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/messages", "/mcp", "/sse", "/x"]),
       _headers, _bodies, st.integers(100, 599), _bodies)
def test_any_request_and_answer_normalise_without_raising(method, path, headers, body, status, answer) -> None:
    request = normalise_request(RawRequest(method, "http", "h", 80, path, Headers(headers), body),
                                request_id="r", agent="a", direction="forward")
    request.model_dump_json().encode("utf-8")  # storable
    response = normalise_response(RawResponse(status, Headers(headers), answer), request)
    response.model_dump_json().encode("utf-8")
    error_reply(request, 403, "no")
