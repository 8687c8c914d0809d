"""Events as the protocol layer produces them, built small for detector tests."""

from __future__ import annotations

import json
from typing import Any

from gateway.detect.base import SessionContext
from gateway.events import Message, RequestEvent, ResponseEvent, ToolCall, ToolResult, ToolSpec

SEND_EMAIL = ToolSpec(name="send_email", description="Sends an email to the given recipients.",
                      input_schema={"type": "object", "properties": {"recipients": {"type": "array"},
                                                                     "subject": {"type": "string"},
                                                                     "body": {"type": "string"}}})
SEND_MONEY = ToolSpec(name="send_money", description="Sends a transaction to the recipient.",
                      input_schema={"type": "object", "properties": {"recipient": {"type": "string"},
                                                                     "amount": {"type": "number"},
                                                                     "subject": {"type": "string"}}})
READ_INBOX = ToolSpec(name="read_inbox", description="Returns the user's emails.")
TOOLS = (SEND_EMAIL, SEND_MONEY, READ_INBOX)


def request(*messages: tuple[str, str], tools: tuple[ToolSpec, ...] = TOOLS, agent: str = "agent",
            session: str = "s1", **fields: Any) -> RequestEvent:
    """A chat request: (role, text) messages in order; ``tool`` messages are also tool results."""
    built = [Message(role=role, text=text, tool_call_id=f"c{i}" if role == "tool" else None)
             for i, (role, text) in enumerate(messages)]
    results = tuple(ToolResult(tool_call_id=m.tool_call_id, name="read_inbox", content=m.text)
                    for m in built if m.role == "tool")
    base: dict[str, Any] = dict(request_id="r1", agent=agent, session=session, protocol="openai.chat",
                                direction="reverse", method="POST", scheme="https", host="gateway", port=443,
                                path="/v1/chat/completions", messages=tuple(built), tools=tools,
                                tool_results=results)
    return RequestEvent(**(base | fields))


def http(method: str, host: str, path: str = "/", body: str = "", **fields: Any) -> RequestEvent:
    """An outbound HTTP request through the forward proxy; the body is a ``body`` message, as http.py makes it."""
    messages = (Message(role="body", text=body),) if body else ()
    return request(protocol="http", direction="forward", method=method, host=host, path=path, tools=(),
                   **({"messages": messages, "tool_results": ()} | fields))


def call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(id="call", name=name, arguments=arguments, arguments_raw=json.dumps(arguments))


def mcp_call(server: str, name: str, **arguments: Any) -> RequestEvent:
    tool_call = ToolCall(id="1", name=name, arguments=arguments, arguments_raw=json.dumps(arguments), server=server)
    return request(protocol="mcp", direction="forward", host=server.split("/")[0], path="/mcp", tools=(),
                   messages=(), tool_results=(), mcp_method="tools/call", mcp_id=1, tool_call=tool_call)


def mcp_result(text: str, name: str = "fetch") -> ResponseEvent:
    return ResponseEvent(request_id="r1", protocol="mcp", status=200,
                         tool_result=ToolResult(tool_call_id="1", name=name, content=text))


def context(agent: str = "agent", session: str = "s1") -> SessionContext:
    return SessionContext(agent, session)
