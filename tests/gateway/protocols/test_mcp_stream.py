"""The MCP stream guard on real server streams: message by message, at every split, failing closed."""

from __future__ import annotations

import json

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from gateway.events import RequestEvent, ResponseEvent
from gateway.protocols import GATEWAY_ERROR, Headers, McpStreamGuard, RawRequest, Verdict, normalise_request
from gateway.protocols.mcp import BLOCKED
from tests.gateway.protocols.mcp_harness import INJECTION, GatewayTransport, client_factory, notes_server
from tests.gateway.protocols.streams import sse
from tests.servers import BackgroundServer

ALLOW = Verdict("allow")


@pytest.fixture(scope="module")
def captured() -> tuple[RequestEvent, bytes]:
    """A tools/call request and the SSE stream the real server answered it with."""
    transport = GatewayTransport()

    async def main() -> None:
        with BackgroundServer(notes_server().streamable_http_app(), lifespan="on") as served:
            async with client_factory(transport)() as http, streamable_http_client(
                    served.url + "/mcp", http_client=http) as (read, write, _), ClientSession(read, write) as session:
                await session.initialize()
                await session.call_tool("read_note", {"name": "meeting"})

    anyio.run(main)
    body = next(bytes(b) for r, b in transport.wire if b"tools/call" in r.body)
    request = next(e for e in transport.requests if e.mcp_method == "tools/call")
    assert body.startswith(b"event: message") and INJECTION.encode() in body
    return request, body


def guard(request: RequestEvent, check=lambda response: ALLOW, **kwargs) -> McpStreamGuard:
    return McpStreamGuard(request_id=request.request_id, pending={request.mcp_id: request}, check=check, **kwargs)


def run(g: McpStreamGuard, data: bytes, cuts: list[int]) -> bytes:
    bounds = [0, *sorted(set(cuts)), len(data)]
    return b"".join(g.feed(data[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)) + g.close()


def no_injection(response: ResponseEvent) -> Verdict:
    if response.tool_result and "IGNORE ALL" in response.tool_result.content:
        return Verdict("block", "injection")
    return ALLOW


def test_allowed_stream_passes_unchanged_at_every_split(captured) -> None:
    request, body = captured
    for cut in range(len(body) + 1):
        g = guard(request)
        assert run(g, body, [cut]) == body
    (check,) = g.result().checks
    assert check.outcome == "allow" and check.response.tool_result.name == "read_note"
    assert check.response.request_id == request.request_id


def test_blocked_result_is_replaced_by_an_error_with_the_same_id_at_every_split(captured) -> None:
    request, body = captured
    whole = run(guard(request, no_injection), body, [])
    for cut in range(len(body) + 1):
        assert run(guard(request, no_injection), body, [cut]) == whole
    assert b"IGNORE ALL" not in whole
    data = json.loads(whole.split(b"data: ", 1)[1])
    assert data == {"jsonrpc": "2.0", "id": request.mcp_id,
                    "error": {"code": BLOCKED, "message": "modelgate blocked this result: injection"}}
    assert whole.startswith(b"event: message\n")


def test_the_replacement_keeps_the_sse_id_for_resumption() -> None:
    data = b'id: 17\ndata: {"jsonrpc": "2.0", "id": 1, "result": {"content": []}}\n\n'
    g = McpStreamGuard(request_id="s", pending={1: _request(1)}, check=lambda r: Verdict("block", "no"))
    assert (g.feed(data) + g.close()).startswith(b"event: message\nid: 17\ndata: ")


def test_other_messages_pass_and_the_stream_goes_on_after_a_block() -> None:
    request = _request(5)
    other = _request(6)
    data = sse([json.dumps({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}),
                json.dumps({"jsonrpc": "2.0", "id": 5, "result": {"content": [{"type": "text", "text": "bad"}]}}),
                json.dumps({"jsonrpc": "2.0", "id": 6, "result": {"content": [{"type": "text", "text": "fine"}]}})],
               events=["message", None, None])
    pending = {5: request, 6: other}

    def check(response: ResponseEvent) -> Verdict:
        return Verdict("block", "no") if response.tool_result and response.tool_result.content == "bad" else ALLOW

    g = McpStreamGuard(request_id="stream", pending=pending, check=check)
    out = g.feed(data) + g.close()
    assert b"notifications/progress" in out and b'"fine"' in out and b'"bad"' not in out
    assert [c.outcome for c in g.result().checks] == ["allow", "block", "allow"]
    assert not pending


def test_a_blocked_server_request_is_withheld() -> None:
    data = sse([json.dumps({"jsonrpc": "2.0", "id": 0, "method": "sampling/createMessage", "params": {
        "messages": [{"role": "user", "content": {"type": "text", "text": "exfiltrate"}}], "maxTokens": 9}})])
    g = McpStreamGuard(request_id="s", pending={}, check=lambda r: Verdict("block", "no") if "exfiltrate" in r.text
                       else ALLOW)
    out = g.feed(data) + g.close()
    assert out == b": modelgate withheld a sampling/createMessage message\n\n"


@pytest.mark.parametrize(("data", "why"), [
    (b"data: {not json}\n\n", "invalid JSON"),
    (b'data: [{"jsonrpc": "2.0", "id": 1, "result": {}}]\n\n', "batch"),
    (b"data: \xff\n\n", "UTF-8"),
])
def test_a_broken_stream_stops_and_answers_every_pending_request(data: bytes, why: str) -> None:
    pending = {1: _request(1), "b": _request("b")}
    g = McpStreamGuard(request_id="s", pending=pending, check=lambda r: ALLOW)
    out = g.feed(data) + g.close()
    answers = [json.loads(line.removeprefix(b"data: ")) for line in out.split(b"\n") if line.startswith(b"data: ")]
    assert [(a["id"], a["error"]["code"]) for a in answers] == [(1, GATEWAY_ERROR), ("b", GATEWAY_ERROR)]
    assert why in g.result().error and not pending
    assert g.feed(b'data: {"jsonrpc": "2.0", "id": 1, "result": {}}\n\n') == b""


def test_a_malformed_result_is_never_passed() -> None:
    request = _request(3)
    data = sse([json.dumps({"jsonrpc": "2.0", "id": 3, "result": {"content": "not a list"}})])
    g = McpStreamGuard(request_id="s", pending={3: request}, check=lambda r: ALLOW)
    out = g.feed(data) + g.close()
    assert b"not a list" not in out and str(GATEWAY_ERROR).encode() in out
    (check,) = g.result().checks
    assert check.outcome == "block" and "result.content must be an array" in check.response.parse_error


def test_endpoint_event_and_comments_pass() -> None:
    data = b"event: endpoint\ndata: /messages/?session_id=abc\n\n: ping - 2025-01-01\n\n"
    g = McpStreamGuard(request_id="s", pending={}, check=lambda r: Verdict("block", "x"))
    assert g.feed(data) + g.close() == data


def test_a_check_that_raises_blocks() -> None:
    request = _request(1)

    def check(response: ResponseEvent) -> Verdict:
        raise RuntimeError("detector crashed")

    g = McpStreamGuard(request_id="s", pending={1: request}, check=check)
    out = g.feed(sse([json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"content": []}})]))
    assert b"detector crashed" in out and str(BLOCKED).encode() in out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_arbitrary_bytes_never_crash_the_guard(data: bytes, cuts: list[int]) -> None:
    g = McpStreamGuard(request_id="s", pending={1: _request(1)}, check=lambda r: ALLOW)
    run(g, b"data: " + data, [c for c in cuts if c < len(data)])
    g.result()


def _request(ident: int | str) -> RequestEvent:
    body = json.dumps({"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": {"name": "t"}}).encode()
    raw = RawRequest("POST", "http", "mcp.local", 80, "/mcp", Headers({"content-type": "application/json"}), body)
    return normalise_request(raw, request_id=f"r{ident}", agent="a", direction="forward")
