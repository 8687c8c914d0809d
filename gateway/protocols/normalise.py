"""The front door the proxy addons call: raw HTTP in, events out; guards for streams; errors per protocol.

Nothing here raises for bad traffic. A request that cannot be understood becomes a ``RequestEvent``
with ``parse_error`` (and the bounded text view of its body, so detectors still see it), and so does a
response (whose ``error`` is kept for what the upstream itself reported); the policy decides. A request
keeps the protocol it was classified as even when its body then fails to parse, so that its refusal has
that protocol's shape.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from gateway.errors import ProtocolError, SessionHeaderError
from gateway.events import Direction, Protocol, RequestEvent, ResponseEvent
from gateway.protocols import anthropic, http, mcp, openai, strict_json
from gateway.protocols.anthropic_stream import AnthropicStream
from gateway.protocols.classify import classify
from gateway.protocols.openai_stream import OpenAIStream
from gateway.protocols.session import client_session, derived_session
from gateway.protocols.shape import RequestFields, ResponseFields
from gateway.protocols.sse import SSEDecoder
from gateway.protocols.stream_guard import StreamAdapter, StreamGuard, ToolCheckFn, reassemble
from gateway.protocols.wire import ErrorReply, Limits, RawRequest, RawResponse, clean_text

__all__ = ["error_reply", "guard_stream", "normalise_request", "normalise_response", "stream_adapter"]

_REQUESTS: dict[Protocol, Callable[[Any], RequestFields]] = {
    "openai.chat": openai.chat_request,
    "openai.completions": openai.completions_request,
    "anthropic.messages": anthropic.messages_request,
}
_RESPONSES: dict[Protocol, Callable[[Any], ResponseFields]] = {
    "openai.chat": openai.chat_response,
    "openai.completions": openai.completions_response,
    "anthropic.messages": anthropic.messages_response,
}


def normalise_request(raw: RawRequest, *, request_id: str, agent: str, direction: Direction,
                      limits: Limits | None = None, now: datetime | None = None) -> RequestEvent:
    limits = limits or Limits()
    found = classify(raw, limits)
    server = mcp.server_name(raw.scheme, raw.host, raw.port, raw.path)
    error = found.parse_error
    fields = RequestFields()
    if error is None:
        try:
            if found.protocol == "mcp" and found.doc is not None:
                fields = mcp.request_fields(found.doc, server=server, max_text=limits.max_text_chars)
            elif found.protocol == "http":
                fields = http.request_fields(raw, limits)
            elif found.protocol != "mcp":  # an MCP GET or DELETE has no body
                fields = _REQUESTS[found.protocol](found.doc)
        except ProtocolError as exc:
            error = f"body: {exc.reason}"
    if error is not None:
        fields = http.request_fields(raw, limits)
    try:
        session = client_session(raw.headers)
    except SessionHeaderError as exc:
        session, error = None, error or exc.reason
    if session is None:
        session = derived_session(agent=agent, protocol=found.protocol, headers=raw.headers, server=server,
                                  system=fields.get("system", ""), messages=fields.get("messages", ()), now=now)
    return RequestEvent(request_id=request_id, agent=agent, session=session, protocol=found.protocol,
                        direction=direction, method=clean_text(raw.method), scheme=clean_text(raw.scheme),
                        host=clean_text(raw.host), port=raw.port, path=clean_text(raw.path),
                        body_size=len(raw.body), parse_error=error, **fields)


def normalise_response(raw: RawResponse, request: RequestEvent, *, limits: Limits | None = None) -> ResponseEvent:
    """A whole (buffered) response; for one streamed through the gateway use ``stream_guard``'s result."""
    limits = limits or Limits()
    fields = ResponseFields()
    if request.protocol == "http" or not raw.body:
        fields = http.response_fields(raw, limits) if raw.body else ResponseFields()
    elif len(raw.body) > limits.max_body_bytes:
        fields = ResponseFields(parse_error=f"body of {len(raw.body)} bytes is over the "
                                            f"{limits.max_body_bytes}-byte limit for inspection")
    else:
        try:
            fields = _response_fields(raw, request, limits)
        except ProtocolError as exc:
            view = http.text_view(raw.headers, raw.body, limits.max_text_chars) or ""
            fields = ResponseFields(text=view, parse_error=f"body: {exc.reason}")
    if raw.status >= 400 and not fields.get("error"):
        fields["error"] = f"HTTP {raw.status}"
    return ResponseEvent(request_id=request.request_id, protocol=request.protocol, status=raw.status,
                         body_size=len(raw.body), **fields)


def stream_adapter(protocol: Protocol, limits: Limits | None = None) -> StreamAdapter:
    """The adapter for an LLM protocol's event stream; ``ValueError`` for protocols without one."""
    depth = (limits or Limits()).max_json_depth
    if protocol in ("openai.chat", "openai.completions"):
        return OpenAIStream(protocol, max_json_depth=depth)
    if protocol == "anthropic.messages":
        return AnthropicStream(max_json_depth=depth)
    raise ValueError(f"no stream guard for {protocol} (MCP streams use McpStreamGuard)")


def guard_stream(request: RequestEvent, check: ToolCheckFn, *, status: int = 200,
                 limits: Limits | None = None) -> StreamGuard:
    """A guard for the event stream that answers ``request`` (an OpenAI or Anthropic one)."""
    return StreamGuard(stream_adapter(request.protocol, limits), check, request_id=request.request_id, status=status,
                       limits=limits)


def error_reply(request: RequestEvent, status: int, message: str) -> ErrorReply:
    """The gateway's refusal in the shape the agent's client parses: 403 for policy, 400 for a bad request,
    401 for a bad agent key, 503 when the audit log cannot record (the request must not pass)."""
    if request.protocol in ("openai.chat", "openai.completions"):
        code = "modelgate_blocked" if status == 403 else None
        return openai.error_reply(status, message, code=code)
    if request.protocol == "anthropic.messages":
        return anthropic.error_reply(status, message)
    if request.protocol == "mcp":
        if status in (400, 403):  # JSON-RPC level: the caller of this request sees the error
            code = mcp.BLOCKED if status == 403 else mcp.INVALID_REQUEST
            return mcp.error_reply(request.mcp_id, message, code=code)
        return ErrorReply(status, strict_json.dumps(mcp.error_message(request.mcp_id, message,
                                                                      code=mcp.GATEWAY_ERROR)).encode())
    return http.error_reply(status, message)


def _response_fields(raw: RawResponse, request: RequestEvent, limits: Limits) -> ResponseFields:
    event_stream = raw.headers.media_type() == "text/event-stream"
    if request.protocol == "mcp":
        return _mcp_response(raw, request, limits, event_stream=event_stream)
    if event_stream:
        return reassemble(stream_adapter(request.protocol, limits), raw.body, limits)
    if raw.headers.media_type() not in ("application/json", "") and raw.status >= 400:
        return http.response_fields(raw, limits)  # an HTML error page from a load balancer
    return _RESPONSES[request.protocol](strict_json.loads(raw.body, max_depth=limits.max_json_depth))


def _mcp_response(raw: RawResponse, request: RequestEvent, limits: Limits, *, event_stream: bool) -> ResponseFields:
    if event_stream:
        decoder = SSEDecoder(max_event_bytes=limits.max_event_bytes)
        events = [f.event for f in (*decoder.feed(raw.body), *decoder.close()) if f.event is not None]
        docs = [strict_json.loads(e.data, max_depth=limits.max_json_depth) for e in events if e.event != "endpoint"]
    else:
        docs = [strict_json.loads(raw.body, max_depth=limits.max_json_depth)]
    messages = [mcp.parse_message(d) for d in docs]
    for message in messages:
        if message.kind in ("result", "error") and message.id == request.mcp_id:
            return mcp.response_fields(message, request, max_text=limits.max_text_chars)
    if request.mcp_method is not None and request.mcp_id is not None:
        raise ProtocolError(f"no response with id {request.mcp_id!r} among {len(messages)} message(s)")
    return ResponseFields()
