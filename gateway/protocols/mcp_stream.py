"""An MCP server's event stream, forwarded one JSON-RPC message at a time, each judged before it passes.

Both transports send server messages as SSE: streamable HTTP answers a POST with a stream that ends with
the response (after any progress notifications or server requests), and the older HTTP+SSE transport
keeps one ``GET`` stream open for all of a session's responses, after an ``endpoint`` event naming where
to POST. Either way every message is a complete event, so nothing needs holding beyond its own event.

A response is read in the light of the request it answers, looked up (and removed) in ``pending``,
which the caller fills as the agent's POSTs pass: for streamable HTTP that is the one request of the
POST; for HTTP+SSE the session's outstanding requests, each entered before its POST is forwarded (the
answer can reach the stream before the POST's 202 does). Every message is checked: a blocked response is
replaced by a JSON-RPC error for the same id (``mcp.BLOCKED``), so the agent's call fails instead of
hanging; a blocked server request or notification is withheld. The stream goes on after a block, since
its other messages answer other calls. A stream that breaks (bad SSE, bad JSON, a batch) stops, and
every request still pending gets a ``mcp.GATEWAY_ERROR`` answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass

from gateway.errors import ProtocolError, SSEError
from gateway.events import RequestEvent, ResponseEvent
from gateway.protocols import mcp, strict_json
from gateway.protocols.mcp import JsonRpc, RequestId
from gateway.protocols.sse import Frame, SSEDecoder, encode_comment, encode_event
from gateway.protocols.stream_guard import Outcome, Verdict, verdict_of
from gateway.protocols.wire import Limits

__all__ = ["McpCheck", "McpStreamGuard", "McpStreamResult"]


@dataclass(frozen=True)
class McpCheck:
    response: ResponseEvent
    outcome: Outcome
    reason: str = ""


@dataclass(frozen=True)
class McpStreamResult:
    checks: tuple[McpCheck, ...]
    """Every message of the stream, as a ResponseEvent, with what became of it."""
    error: str | None


class McpStreamGuard:
    """Used like ``StreamGuard`` (``feed``, ``close``, and the same care with ``b""`` under mitmproxy)."""

    def __init__(self, *, request_id: str, pending: MutableMapping[RequestId, RequestEvent],
                 check: Callable[[ResponseEvent], Verdict], status: int = 200, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._request_id, self._status = request_id, status
        self._pending, self._check = pending, check
        self._decoder = SSEDecoder(max_event_bytes=self.limits.max_event_bytes)
        self._checks: list[McpCheck] = []
        self._stopped = False
        self._error: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        if self._stopped:
            return b""
        try:
            return self._frames(self._decoder.feed(chunk))
        except SSEError as exc:
            return self._stop(f"broken event stream: {exc.reason}")

    def close(self) -> bytes:
        if self._stopped:
            return b""
        try:
            return self._frames(self._decoder.close())
        except SSEError as exc:
            return self._stop(f"broken event stream: {exc.reason}")

    def result(self) -> McpStreamResult:
        return McpStreamResult(tuple(self._checks), self._error)

    def _frames(self, frames: list[Frame]) -> bytes:
        out = bytearray()
        for frame in frames:
            out += self._frame(frame)
            if self._stopped:
                break
        return bytes(out)

    def _frame(self, frame: Frame) -> bytes:
        event = frame.event
        if event is None or event.event == "endpoint":
            return frame.raw
        try:
            message = mcp.parse_message(strict_json.loads(event.data, max_depth=self.limits.max_json_depth))
        except ProtocolError as exc:
            return self._stop(f"malformed message: {exc.reason}")
        request = self._pending.pop(message.id, None) if message.kind in ("result", "error") else None
        response = self._response(message, request, len(frame.raw))
        malformed = response.parse_error is not None
        verdict = Verdict("block", response.parse_error or "") if malformed else verdict_of(self._check, response)
        self._checks.append(McpCheck(response, verdict.action, verdict.reason))
        if verdict.action != "block":
            return frame.raw
        if message.kind not in ("result", "error"):
            return encode_comment(f"modelgate withheld a {message.method} message")
        answer = mcp.error_message(message.id, f"modelgate blocked this result: {verdict.reason}",
                                   code=mcp.GATEWAY_ERROR if malformed else mcp.BLOCKED)
        return encode_event(json.dumps(answer), event=event.event, id=event.id)  # resumption ids stay valid

    def _response(self, message: JsonRpc, request: RequestEvent | None, size: int) -> ResponseEvent:
        """The message as a ResponseEvent; one that is malformed has ``parse_error`` and is never passed on."""
        base = {"request_id": request.request_id if request is not None else self._request_id, "protocol": "mcp",
                "status": self._status, "body_size": size}
        try:
            fields = mcp.response_fields(message, request, max_text=self.limits.max_text_chars)
        except ProtocolError as exc:
            return ResponseEvent(**base, parse_error=f"malformed result: {exc.reason}")
        return ResponseEvent(**base, **fields)

    def _stop(self, reason: str) -> bytes:
        self._stopped, self._error = True, reason
        out = bytearray()
        for ident in list(self._pending):
            self._pending.pop(ident)
            answer = mcp.error_message(ident, f"modelgate stopped the server's stream: {reason}",
                                       code=mcp.GATEWAY_ERROR)
            out += encode_event(json.dumps(answer))
        return bytes(out)
