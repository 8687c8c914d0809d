"""Protocol normalisation: raw HTTP parts to the shared event model, stream guards, and error answers.

Pure functions and small state machines with no mitmproxy in them, so every parser is tested with
bytes. The addons copy a flow into a ``RawRequest``, call ``normalise_request``, and for a streamed
answer put ``guard_stream``'s guard (or, for MCP, an ``McpStreamGuard``) between upstream and agent::

    >>> from gateway.protocols import Headers, RawRequest, Verdict, guard_stream, normalise_request
    >>> raw = RawRequest("POST", "https", "api.openai.com", 443, "/v1/chat/completions",
    ...                  Headers({"content-type": "application/json"}),
    ...                  b'{"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}')
    >>> event = normalise_request(raw, request_id="r1", agent="build-bot", direction="forward")
    >>> event.protocol, event.messages[0].text, event.session.startswith("conv-")
    ('openai.chat', 'hi', True)
    >>> guard = guard_stream(event, lambda call: Verdict("block", f"{call.name} is not allowed"))
    >>> out = guard.feed(b'data: {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", '
    ...                  b'"function": {"name": "shell", "arguments": "{}"}}]}}]}\\n\\n')
    >>> out, b"modelgate_blocked" in guard.feed(b'data: [DONE]\\n\\n')
    (b'', True)
    >>> [(c.call.name, c.outcome) for c in guard.result().checks]
    [('shell', 'block')]
"""

from __future__ import annotations

from gateway.protocols.classify import Classified, classify
from gateway.protocols.mcp import BLOCKED, GATEWAY_ERROR
from gateway.protocols.mcp_stream import McpCheck, McpStreamGuard, McpStreamResult
from gateway.protocols.normalise import error_reply, guard_stream, normalise_request, normalise_response
from gateway.protocols.stream_guard import StreamGuard, StreamResult, ToolCheck, Verdict
from gateway.protocols.wire import ErrorReply, Headers, Limits, RawRequest, RawResponse

__all__ = [
    "BLOCKED",
    "GATEWAY_ERROR",
    "Classified",
    "ErrorReply",
    "Headers",
    "Limits",
    "McpCheck",
    "McpStreamGuard",
    "McpStreamResult",
    "RawRequest",
    "RawResponse",
    "StreamGuard",
    "StreamResult",
    "ToolCheck",
    "Verdict",
    "classify",
    "error_reply",
    "guard_stream",
    "normalise_request",
    "normalise_response",
]
