"""Reading untrusted JSON documents: typed accessors that name the offending path, and the parsers' results.

Every protocol parser reads fields the same way: a field the gateway inspects must have the type the
protocol gives it, or the request is refused with the path that was wrong (``messages[2].content``),
because an upstream may read a mistyped value in a way the gateway did not check. Fields the gateway
does not inspect are ignored, so new API features pass without a gateway release.
"""

from __future__ import annotations

from typing import Any, TypedDict

from gateway.errors import ProtocolError
from gateway.events import Message, ToolCall, ToolResult, ToolSpec, Usage
from gateway.protocols import strict_json

__all__ = [
    "RequestFields",
    "ResponseFields",
    "array",
    "bounded",
    "join",
    "obj",
    "opt_bool",
    "opt_int",
    "opt_str",
    "req_str",
    "tool_call",
]


class RequestFields(TypedDict, total=False):
    """What a protocol parser read from a request body: the protocol part of a ``RequestEvent``."""

    model: str | None
    stream: bool
    max_tokens: int | None
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...]
    tool_results: tuple[ToolResult, ...]
    mcp_method: str | None
    mcp_id: str | int | None
    tool_call: ToolCall | None


class ResponseFields(TypedDict, total=False):
    """What a protocol parser read from a response body: the protocol part of a ``ResponseEvent``."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    tool_result: ToolResult | None
    tools: tuple[ToolSpec, ...]
    usage: Usage | None
    finish_reason: str | None
    error: str | None
    parse_error: str | None


def obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{where} must be an object")
    return value


def array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProtocolError(f"{where} must be an array")
    return value


def opt_str(doc: dict[str, Any], key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"{where}.{key} must be a string")
    return value


def req_str(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"{where}.{key} must be a string")
    return value


def opt_int(doc: dict[str, Any], key: str, where: str) -> int | None:
    value = doc.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ProtocolError(f"{where}.{key} must be an integer")
    return value


def opt_bool(doc: dict[str, Any], key: str, where: str) -> bool | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, bool):
        raise ProtocolError(f"{where}.{key} must be true or false")
    return value


def join(parts: list[str]) -> str:
    """Parts of one message's content, one per line."""
    return "\n".join(p for p in parts if p)


def bounded(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out (a detector must not think it saw all)."""
    return text if len(text) <= limit else f"{text[:limit]}[... {len(text) - limit} more characters not kept]"


def tool_call(call_id: str | None, name: str, raw: str, *, server: str | None = None) -> ToolCall:
    """A tool call from its arguments text; arguments that are not strict JSON are kept raw, unparsed."""
    try:
        arguments, valid = strict_json.loads(raw), True
    except ProtocolError:
        arguments, valid = None, False
    return ToolCall(id=call_id, name=name, arguments_raw=raw, arguments=arguments, valid_json=valid, server=server)
