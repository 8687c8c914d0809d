"""MCP through a gateway in the client's transport: the mcp SDK's client and server, over real sockets."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import ClientSession, McpError
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from gateway.errors import ProtocolError
from gateway.events import ResponseEvent
from gateway.protocols import BLOCKED, Headers, RawRequest, Verdict, error_reply, normalise_request
from gateway.protocols import mcp as mcp_protocol
from tests.gateway.protocols.mcp_harness import INJECTION, GatewayTransport, client_factory, notes_server
from tests.servers import BackgroundServer

ALLOW = Verdict("allow")


async def exercise(session: ClientSession) -> dict[str, object]:
    await session.initialize()
    tools = await session.list_tools()
    added = await session.call_tool("add", {"a": 2, "b": 3})
    resource = await session.read_resource("notes://plan")
    prompt = await session.get_prompt("review", {"code": "print(1)"})
    return {"tools": tools, "added": added, "resource": resource, "prompt": prompt}


def run_streamable(transport: GatewayTransport, body, **server_settings: object):
    async def main():
        with BackgroundServer(notes_server(**server_settings).streamable_http_app(), lifespan="on") as served:
            async with client_factory(transport)() as http, streamable_http_client(
                    served.url + "/mcp", http_client=http) as (read, write, _), ClientSession(read, write) as session:
                return await body(session), served.url

    return anyio.run(main)


def responses(transport: GatewayTransport) -> list[ResponseEvent]:
    return [*transport.responses, *(c.response for g in transport.guards for c in g.result().checks)]


@pytest.mark.parametrize("json_response", [False, True])
def test_streamable_http_session_is_normalised(json_response: bool) -> None:
    transport = GatewayTransport()
    results, url = run_streamable(transport, exercise, json_response=json_response)
    assert results["added"].content[0].text == "5"
    port = url.rsplit(":", 1)[1]
    by_method = {e.mcp_method: e for e in transport.requests}
    assert {"initialize", "notifications/initialized", "tools/list", "tools/call", "resources/read",
            "prompts/get"} <= set(by_method)
    call = by_method["tools/call"].tool_call
    assert (call.name, call.arguments, call.server) == ("add", {"a": 2, "b": 3}, f"127.0.0.1:{port}/mcp")
    assert by_method["tools/call"].protocol == "mcp" and by_method["tools/call"].session.startswith("mcp-")
    assert by_method["initialize"].session != by_method["tools/call"].session  # no Mcp-Session-Id yet
    assert len({by_method[m].session for m in ("tools/list", "tools/call", "prompts/get")}) == 1
    assert all(e.parse_error is None for e in transport.requests)

    events = responses(transport)
    listed = next(r for r in events if r.tools)
    assert {t.name for t in listed.tools} == {"add", "read_note"}
    add = next(t for t in listed.tools if t.name == "add")
    assert add.server == call.server and add.description == "Add two integers."
    assert add.input_schema["properties"]["a"]["type"] == "integer"
    results_by_name = {r.tool_result.name: r.tool_result for r in events if r.tool_result}
    assert results_by_name["add"].content.startswith("5") and not results_by_name["add"].is_error
    assert results_by_name["resources/read"].content == "resource note plan"
    assert "Please review:\nprint(1)" in results_by_name["prompts/get"].content
    assert any("Use read_note for notes." in r.text for r in events)  # initialize's instructions are kept


def test_a_blocked_tool_call_gets_the_json_rpc_error_and_never_reaches_the_server() -> None:
    transport = GatewayTransport(request_check=lambda e: Verdict("block", "tool add is not allowed")
                                 if e.tool_call and e.tool_call.name == "add" else ALLOW)

    async def body(session: ClientSession):
        await session.initialize()
        with pytest.raises(McpError, match="tool add is not allowed") as raised:
            await session.call_tool("add", {"a": 1, "b": 1})
        return raised.value.error.code, await session.call_tool("read_note", {"name": "x"})

    (code, later), _ = run_streamable(transport, body)
    assert code == BLOCKED and later.content[0].text == "note x"  # the session goes on
    assert not any(r.tool_result and r.tool_result.name == "add" for r in responses(transport))


@pytest.mark.parametrize("json_response", [False, True])
def test_a_blocked_tool_result_is_replaced_by_an_error_for_that_call(json_response: bool) -> None:
    def check(response: ResponseEvent) -> Verdict:
        if response.tool_result and "IGNORE ALL PREVIOUS" in response.tool_result.content:
            return Verdict("block", "prompt injection in tool result")
        return ALLOW

    transport = GatewayTransport(response_check=check)

    async def body(session: ClientSession):
        await session.initialize()
        with pytest.raises(McpError, match="prompt injection in tool result"):
            await session.call_tool("read_note", {"name": "meeting"})
        return await session.call_tool("read_note", {"name": "other"})

    later, _ = run_streamable(transport, body, json_response=json_response)
    assert later.content[0].text == "note other"
    blocked = [r for r in responses(transport) if r.tool_result and INJECTION in r.tool_result.content]
    assert blocked and blocked[0].tool_result.name == "read_note"


def test_http_sse_transport() -> None:
    def check(response: ResponseEvent) -> Verdict:
        bad = response.tool_result and INJECTION in response.tool_result.content
        return Verdict("block", "injection") if bad else ALLOW

    transport = GatewayTransport(response_check=check)

    async def main():
        with BackgroundServer(notes_server().sse_app(), lifespan="on") as served:
            async with sse_client(served.url + "/sse", httpx_client_factory=client_factory(transport)) as (
                    read, write), ClientSession(read, write) as session:
                results = await exercise(session)
                with pytest.raises(McpError, match="injection"):
                    await session.call_tool("read_note", {"name": "meeting"})
                return results

    results = anyio.run(main)
    assert results["added"].content[0].text == "5"
    get_stream = next(e for e in transport.requests if e.method == "GET")
    assert get_stream.protocol == "mcp"  # GET .../sse accepting text/event-stream
    calls = [e for e in transport.requests if e.mcp_method == "tools/call"]
    assert [c.tool_call.name for c in calls] == ["add", "read_note"]
    events = responses(transport)
    assert {t.name for r in events for t in r.tools} == {"add", "read_note"}
    assert any(r.tool_result and r.tool_result.name == "add" for r in events)  # correlated through pending
    assert not transport.pending


# --- messages, one by one --------------------------------------------------------------------------------------


def test_parse_message_kinds() -> None:
    assert mcp_protocol.parse_message({"jsonrpc": "2.0", "id": 1, "method": "ping"}).kind == "request"
    assert mcp_protocol.parse_message({"jsonrpc": "2.0", "method": "notifications/initialized"}).kind == "notification"
    assert mcp_protocol.parse_message({"jsonrpc": "2.0", "id": "a", "result": {}}).kind == "result"
    assert mcp_protocol.parse_message({"jsonrpc": "2.0", "id": None, "error": {"code": -32700}}).kind == "error"


@pytest.mark.parametrize(("doc", "why"), [
    ([{"jsonrpc": "2.0", "id": 1, "method": "tools/call"}], "batch"),
    ({"jsonrpc": "1.0", "id": 1, "method": "ping"}, "jsonrpc"),
    ({"jsonrpc": "2.0", "id": True, "method": "ping"}, "string or an integer"),
    ({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}, "string or an integer"),
    ({"jsonrpc": "2.0", "id": None, "method": "ping"}, "null only in an error"),
    ({"jsonrpc": "2.0"}, "neither a method nor an id"),
    ({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": []}, "params must be an object"),
    ({"jsonrpc": "2.0", "id": 1, "result": "ok"}, "result must be an object"),
])
def test_parse_message_refuses(doc, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        mcp_protocol.parse_message(doc)


def test_tools_call_request_fields() -> None:
    fields = mcp_protocol.request_fields({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                                          "params": {"name": "rm", "arguments": {"path": "/"}}},
                                         server="s", max_text=100)
    call = fields["tool_call"]
    assert (fields["mcp_id"], call.id, call.name, call.server) == (7, "7", "rm", "s")
    assert call.arguments_raw == "{\"path\":\"/\"}"
    with pytest.raises(ProtocolError, match="params.name"):
        mcp_protocol.request_fields({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}},
                                    server="s", max_text=100)


def test_results_are_read_by_shape_when_the_request_is_unknown() -> None:
    def read(result: dict) -> dict:
        return mcp_protocol.response_fields(mcp_protocol.parse_message({"jsonrpc": "2.0", "id": 1, "result": result}),
                                            None, max_text=1000)

    assert read({"tools": [{"name": "t", "inputSchema": {"type": "object"}}]})["tools"][0].name == "t"
    result = read({"content": [{"type": "text", "text": "a"}, {"type": "image", "data": "x", "mimeType": "image/png"},
                               {"type": "resource_link", "uri": "file:///x", "name": "x"},
                               {"type": "resource", "resource": {"uri": "u", "blob": "AA=="}}],
                   "structuredContent": {"k": 1}, "isError": True})["tool_result"]
    assert result.is_error and result.content == ("a\n[image: image/png]\n[resource_link: file:///x]\nx\n"
                                                  '[blob: u]\n[structuredContent] {"k":1}')
    assert read({"contents": [{"uri": "u", "text": "hi"}]})["tool_result"].content == "hi"
    assert "x" * 10 in read({"other": "x" * 2000})["text"] and "not kept" in read({"other": "x" * 2000})["text"]


def test_error_reply_shapes() -> None:
    raw = RawRequest("POST", "http", "localhost", 8000, "/mcp", Headers({"content-type": "application/json",
                                                                         "mcp-protocol-version": "2025-06-18"}),
                     b'{"jsonrpc": "2.0", "id": "abc", "method": "tools/call", "params": {"name": "x"}}')
    event = normalise_request(raw, request_id="r", agent="a", direction="forward")
    reply = error_reply(event, 403, "no")
    assert reply.status == 200 and reply.body == b'{"jsonrpc": "2.0", "id": "abc", "error": {"code": -32010, ' \
                                                 b'"message": "no"}}'
    assert error_reply(event, 503, "audit down").status == 503
    note = normalise_request(RawRequest("POST", "http", "localhost", 8000, "/mcp", raw.headers,
                                        b'{"jsonrpc": "2.0", "method": "notifications/initialized"}'),
                             request_id="r", agent="a", direction="forward")
    assert error_reply(note, 403, "no").status == 403


_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                           st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error", "name",
                                            "arguments", "tools", "content", "contents", "messages", "type", "text",
                                            "inputSchema", "isError", "structuredContent", "resource", "uri"]),
                           inner, max_size=5), max_leaves=25)
_messages = st.builds(lambda d, m: {**d, "jsonrpc": "2.0", **m}, st.dictionaries(st.sampled_from(
    ["id", "params", "result", "error"]), _values, max_size=3), st.fixed_dictionaries(
    {}, optional={"method": st.sampled_from(["tools/call", "tools/list", "ping"]), "id": st.integers(0, 3)}))


@settings(max_examples=400, deadline=None)
@given(_values | _messages, st.sampled_from([None, "tools/list", "tools/call", "resources/read", "prompts/get"]))
def test_parsers_take_any_json_and_raise_only_protocol_error(doc, method) -> None:
    try:
        mcp_protocol.request_fields(doc, server="s", max_text=50)
    except ProtocolError:
        pass
    try:
        message = mcp_protocol.parse_message(doc)
    except ProtocolError:
        return
    request = None
    if method is not None:
        raw = RawRequest("POST", "http", "h", 80, "/mcp", Headers({"mcp-protocol-version": "2025-06-18"}),
                         b'{"jsonrpc": "2.0", "id": 1, "method": "%s", "params": {"name": "n"}}' % method.encode())
        request = normalise_request(raw, request_id="r", agent="a", direction="forward")
    try:
        mcp_protocol.response_fields(message, request, max_text=50)
    except ProtocolError:
        pass
