"""Which protocol a request speaks, from its method, path, headers and body; the body is parsed once, here.

Rules, first match wins (paths compared without query, trailing slash or case):

1. ``POST .../chat/completions`` is ``openai.chat``; ``POST .../completions`` is ``openai.completions``.
2. ``POST .../messages`` (or ``.../messages/count_tokens``) with an ``anthropic-version`` header is
   ``anthropic.messages``.
3. An ``Mcp-Session-Id`` or ``MCP-Protocol-Version`` header, or a ``GET .../sse`` that accepts
   ``text/event-stream`` (the HTTP+SSE transport's stream), is ``mcp``.
4. A JSON-RPC 2.0 body (or batch) with an MCP method is ``mcp``.
5. Anything else is ``http``.

The body is parsed (strictly, see ``strict_json``) when the protocol requires JSON, and also whenever
it looks like JSON: a JSON Content-Type; JSON in UTF-16/32; a first character ``{`` or ``[`` unless
the Content-Type declares text, a form or XML (then only a body that mentions ``jsonrpc``). A body
that looks like JSON but fails strict parsing gets ``parse_error`` whatever its protocol, because an
upstream with a laxer parser may still read it: an MCP ``tools/call`` hidden behind a duplicate key
must not pass as opaque HTTP (such a body that mentions ``jsonrpc`` is labelled ``mcp``, so that the
refusal is a JSON-RPC error the agent's MCP client understands). A body over ``Limits.max_body_bytes``
is not parsed and gets ``parse_error`` whenever it would have been.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from gateway.errors import ProtocolError
from gateway.events import Protocol
from gateway.protocols import mcp, strict_json
from gateway.protocols.wire import Limits, RawRequest

__all__ = ["Classified", "classify"]

_JSON_START = re.compile(rb"[ \t\r\n]*[\[{]")
_DECLARED_NOT_JSON = ("text/", "multipart/", "application/x-www-form-urlencoded", "application/xml")
_ANTHROPIC_PATHS = ("/messages", "/messages/count_tokens")
_JSON_BODY: frozenset[Protocol] = frozenset({"openai.chat", "openai.completions", "anthropic.messages"})


@dataclass(frozen=True)
class Classified:
    protocol: Protocol
    doc: Any = None
    """The parsed JSON body; None when it was not parsed or could not be."""
    parse_error: str | None = None


def classify(raw: RawRequest, limits: Limits | None = None) -> Classified:
    limits = limits or Limits()
    protocol = _by_request_line(raw)
    needs_json = protocol in _JSON_BODY or (protocol == "mcp" and raw.method.upper() == "POST")
    if not needs_json and not (raw.body and _looks_like_json(raw)):
        return Classified(protocol)
    if len(raw.body) > limits.max_body_bytes:
        return Classified(protocol, parse_error=f"body of {len(raw.body)} bytes is over the "
                                                f"{limits.max_body_bytes}-byte limit for inspection")
    try:
        doc = strict_json.loads(raw.body, max_depth=limits.max_json_depth)
    except ProtocolError as exc:
        return Classified("mcp" if protocol == "http" and b"jsonrpc" in raw.body else protocol,
                          parse_error=f"body: {exc.reason}")
    if protocol == "http" and _is_mcp(doc):
        protocol = "mcp"
    return Classified(protocol, doc)


def _by_request_line(raw: RawRequest) -> Protocol:
    path = raw.path.partition("?")[0].rstrip("/").lower()
    method = raw.method.upper()
    if method == "POST" and path.endswith("/chat/completions"):
        return "openai.chat"
    if method == "POST" and path.endswith("/completions"):
        return "openai.completions"
    if method == "POST" and path.endswith(_ANTHROPIC_PATHS) and "anthropic-version" in raw.headers:
        return "anthropic.messages"
    if mcp.SESSION_HEADER in raw.headers or mcp.VERSION_HEADER in raw.headers:
        return "mcp"
    if method == "GET" and path.endswith("/sse") and "text/event-stream" in (raw.headers.get("accept") or ""):
        return "mcp"
    return "http"


def _looks_like_json(raw: RawRequest) -> bool:
    media = raw.headers.media_type()
    if media == "application/json" or media.endswith("+json"):
        return True
    if media.startswith(_DECLARED_NOT_JSON):  # a log line may start with "[": only JSON-RPC is suspect here
        return b"jsonrpc" in raw.body or _wide_json(raw.body)
    return _JSON_START.match(raw.body) is not None or _wide_json(raw.body)


def _wide_json(body: bytes) -> bool:
    """JSON in UTF-16 or UTF-32 (told by a BOM or the NUL pattern), which ``json.loads(bytes)`` accepts."""
    encoding = json.detect_encoding(body[:4])
    if encoding in ("utf-8", "utf-8-sig") and not body.startswith(b"\xef\xbb\xbf"):
        return False
    return _JSON_START.match(body[:64].decode(encoding, "ignore").lstrip("\ufeff").encode()) is not None


def _is_mcp(doc: Any) -> bool:
    messages = doc if isinstance(doc, list) else [doc]
    return any(isinstance(m, dict) and m.get("jsonrpc") == "2.0" and mcp.is_mcp_method(m.get("method"))
               for m in messages)
