"""MCP: JSON-RPC 2.0 messages as streamable HTTP and the older HTTP+SSE transport carry them.

An agent POSTs one message (a request, a notification, or a response to a server's request); the
answer is ``application/json`` or a ``text/event-stream`` of messages (``mcp_stream`` handles that
incrementally). A result means nothing without the request it answers (a ``tools/list`` and a
``tools/call`` result are both just objects), so response parsing takes the ``RequestEvent``, and
falls back to the result's shape when the request is unknown.

Untrusted content: ``tools/call`` results (content blocks and ``structuredContent``), ``resources/read``
contents and ``prompts/get`` messages become a ``ToolResult``; every other result (``initialize``
carries the server's ``instructions``, listings carry descriptions) is kept as text.

JSON-RPC batches (MCP 2025-03-26 only; removed in 2025-06-18, and sent by neither official SDK) are
refused rather than inspected message by message.

Error codes the gateway answers with, in JSON-RPC's implementation-defined range (-32000 is taken by
the SDKs for a closed connection, -32001 for a timeout):

- ``BLOCKED`` (-32010): the gateway's policy refused this request or its result;
- ``GATEWAY_ERROR`` (-32011): the gateway could not inspect or record the message, so it did not pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from gateway.errors import ProtocolError
from gateway.events import Message, RequestEvent, ToolResult, ToolSpec
from gateway.protocols import strict_json
from gateway.protocols.shape import (
    RequestFields,
    ResponseFields,
    array,
    bounded,
    join,
    obj,
    opt_bool,
    opt_str,
    req_str,
    tool_call,
)
from gateway.protocols.wire import ErrorReply

__all__ = [
    "BLOCKED",
    "GATEWAY_ERROR",
    "INVALID_REQUEST",
    "SESSION_HEADER",
    "VERSION_HEADER",
    "JsonRpc",
    "RequestId",
    "error_message",
    "error_reply",
    "is_mcp_method",
    "parse_message",
    "request_fields",
    "response_fields",
    "server_name",
]

BLOCKED = -32010
GATEWAY_ERROR = -32011
INVALID_REQUEST = -32600  # JSON-RPC's own: a message the gateway cannot read
SESSION_HEADER = "mcp-session-id"
VERSION_HEADER = "mcp-protocol-version"

RequestId = str | int

_METHODS = frozenset({
    "initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/templates/list",
    "resources/read", "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get",
    "completion/complete", "logging/setLevel", "sampling/createMessage", "elicitation/create", "roots/list",
})


@dataclass(frozen=True)
class JsonRpc:
    """One JSON-RPC 2.0 message, checked for the shape its kind requires."""

    kind: Literal["request", "notification", "result", "error"]
    id: RequestId | None = None
    method: str | None = None
    params: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def payload(self) -> dict[str, Any] | None:
        """Whatever the message carries: its params, result or error."""
        return self.params if self.method is not None else self.result if self.kind == "result" else self.error


def is_mcp_method(method: object) -> bool:
    return isinstance(method, str) and (method in _METHODS or method.startswith("notifications/"))


def parse_message(doc: Any) -> JsonRpc:
    if isinstance(doc, list):
        raise ProtocolError(f"JSON-RPC batch of {len(doc)} messages: batches were removed from MCP in 2025-06-18 "
                            "and the gateway does not inspect them")
    message = obj(doc, "message")
    if message.get("jsonrpc") != "2.0":
        raise ProtocolError('message.jsonrpc must be "2.0"')
    has_id = "id" in message
    ident = message.get("id")
    if ident is None and has_id and "error" not in message:
        raise ProtocolError("message.id may be null only in an error response")
    if ident is not None and (isinstance(ident, bool) or not isinstance(ident, str | int)):
        raise ProtocolError("message.id must be a string or an integer")
    if "method" in message:
        method = req_str(message, "method", "message")
        params = obj(message["params"], "message.params") if message.get("params") is not None else None
        return JsonRpc("request" if has_id else "notification", ident, method, params)
    if not has_id:
        raise ProtocolError("message has neither a method nor an id")
    if "error" in message:
        error = obj(message["error"], "message.error")
        return JsonRpc("error", ident, error=error)
    return JsonRpc("result", ident, result=obj(message.get("result"), "message.result"))


def server_name(scheme: str, host: str, port: int, path: str) -> str:
    """``host[:port]/path``, the port only when it is not the scheme's default: how tools are attributed."""
    default = {"http": 80, "https": 443}.get(scheme.lower())
    return f"{host}{'' if port == default else f':{port}'}{path.partition('?')[0]}"


def request_fields(doc: Any, *, server: str, max_text: int) -> RequestFields:
    message = parse_message(doc)
    fields = RequestFields(mcp_method=message.method, mcp_id=message.id)
    if message.method == "tools/call":
        params = obj(message.params, "params")
        arguments = strict_json.dumps({} if params.get("arguments") is None else params["arguments"])
        call_id = None if message.id is None else str(message.id)
        fields["tool_call"] = tool_call(call_id, req_str(params, "name", "params"), arguments, server=server)
    elif message.payload:
        fields["messages"] = (Message(role="body", text=bounded(strict_json.dumps(message.payload), max_text)),)
    return fields


def response_fields(message: JsonRpc, request: RequestEvent | None, *, max_text: int) -> ResponseFields:
    """What a message from the server says: a result interpreted by the request it answers, or an error."""
    if message.kind == "error":
        error = message.error or {}
        return ResponseFields(error=opt_str(error, "message", "error") or json.dumps(error)[:1000])
    if message.kind != "result":  # a server's own request (sampling, elicitation) or a notification
        return ResponseFields(text=bounded(strict_json.dumps(message.params or {}), max_text))
    result = message.result or {}
    method = request.mcp_method if request is not None else _method_of(result)
    server = server_name(request.scheme, request.host, request.port, request.path) if request is not None else None
    call_id = None if message.id is None else str(message.id)
    if method == "tools/list":
        return ResponseFields(tools=tuple(_spec(t, where, server) for where, t in _items(result, "tools")))
    if method == "tools/call":
        name = request.tool_call.name if request is not None and request.tool_call is not None else None
        parts = [_content_text(b, where) for where, b in _items(result, "content", required=False)]
        if (structured := result.get("structuredContent")) is not None:
            parts.append(f"[structuredContent] {strict_json.dumps(structured)}")
        return ResponseFields(tool_result=ToolResult(tool_call_id=call_id, name=name, content=join(parts),
                                                     is_error=bool(opt_bool(result, "isError", "result"))))
    if method == "resources/read":
        parts = [_resource_text(c, where) for where, c in _items(result, "contents")]
        return ResponseFields(tool_result=ToolResult(tool_call_id=call_id, name=method, content=join(parts)))
    if method == "prompts/get":
        parts = [opt_str(result, "description", "result") or ""]
        for where, prompt in _items(result, "messages"):
            parts.append(_content_text(obj(prompt, where).get("content"), f"{where}.content"))
        return ResponseFields(tool_result=ToolResult(tool_call_id=call_id, name=method, content=join(parts)))
    return ResponseFields(text=bounded(strict_json.dumps(result), max_text))


def error_message(ident: RequestId | None, message: str, *, code: int = BLOCKED) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}


def error_reply(ident: RequestId | None, message: str, *, code: int = BLOCKED) -> ErrorReply:
    """A request gets its JSON-RPC error with HTTP 200, which the SDKs hand to the waiting caller; a
    notification or response (nothing waits on it) gets HTTP 403, as the spec asks of refused input."""
    body = json.dumps(error_message(ident, message, code=code)).encode()
    return ErrorReply(200 if ident is not None else 403, body)


def _method_of(result: dict[str, Any]) -> str | None:
    for key, method in (("tools", "tools/list"), ("content", "tools/call"), ("contents", "resources/read")):
        if isinstance(result.get(key), list):
            return method
    return "prompts/get" if isinstance(result.get("messages"), list) else None


def _items(result: dict[str, Any], key: str, *, required: bool = True) -> list[tuple[str, Any]]:
    value = result.get(key) if required or result.get(key) is not None else []
    return [(f"result.{key}[{i}]", item) for i, item in enumerate(array(value, f"result.{key}"))]


def _spec(raw: Any, where: str, server: str | None) -> ToolSpec:
    tool = obj(raw, where)
    return ToolSpec(name=req_str(tool, "name", where), description=opt_str(tool, "description", where) or "",
                    input_schema=obj(tool.get("inputSchema") or {}, f"{where}.inputSchema"), server=server)


def _content_text(raw: Any, where: str) -> str:
    block = obj(raw, where)
    kind = req_str(block, "type", where)
    if kind == "text":
        return req_str(block, "text", where)
    if kind == "resource":
        return _resource_text(block.get("resource"), f"{where}.resource")
    if kind == "resource_link":
        return join([f"[resource_link: {opt_str(block, 'uri', where)}]", opt_str(block, "name", where) or "",
                     opt_str(block, "description", where) or ""])
    return f"[{kind}: {opt_str(block, 'mimeType', where) or 'unknown type'}]"


def _resource_text(raw: Any, where: str) -> str:
    resource = obj(raw, where)
    if (text := opt_str(resource, "text", where)) is not None:
        return text
    label = " ".join(p for p in (opt_str(resource, "uri", where), opt_str(resource, "mimeType", where)) if p)
    return f"[blob: {label}]"
