"""Anthropic Messages: request and response bodies, and the error body.

A user turn's ``tool_result`` blocks become ``tool`` messages in block order (the shape OpenAI gives
them), each also a ``ToolResult`` named after the ``tool_use`` it answers. Results of tools that
Anthropic ran itself (``web_search_tool_result``, ``mcp_tool_result``...) are untrusted content too and
are kept the same way, as far as they are readable text. Plain-text documents are inlined: they are
content the model reads, not an attachment to name.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.events import Message, ToolCall, ToolResult, ToolSpec, Usage
from gateway.protocols import strict_json
from gateway.protocols.shape import RequestFields, ResponseFields, array, join, obj, opt_bool, opt_int, opt_str, req_str
from gateway.protocols.wire import ErrorReply

__all__ = ["block_text", "error_body", "error_reply", "is_tool_use", "messages_request", "messages_response", "usage"]

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}
_READABLE = ("title", "url", "stdout", "stderr", "error_code")


def is_tool_use(kind: str) -> bool:
    """``tool_use`` and the server-run kinds (``server_tool_use``, ``mcp_tool_use``): all are calls to check."""
    return kind.endswith("tool_use")


def messages_request(doc: Any) -> RequestFields:
    body = obj(doc, "body")
    messages: list[Message] = []
    results: list[ToolResult] = []
    call_names: dict[str, str] = {}
    for i, raw in enumerate(array(body.get("messages"), "messages")):
        where = f"messages[{i}]"
        message = obj(raw, where)
        role = req_str(message, "role", where)
        content = message.get("content")
        if isinstance(content, str):
            messages.append(Message(role=role, text=content))
            continue
        texts: list[str] = []
        for j, raw_block in enumerate(array(content, f"{where}.content")):
            block_where = f"{where}.content[{j}]"
            block = obj(raw_block, block_where)
            kind = req_str(block, "type", block_where)
            if is_tool_use(kind):
                name = req_str(block, "name", block_where)
                if call_id := opt_str(block, "id", block_where):
                    call_names[call_id] = name
                texts.append(f"[{kind}: {name}]")
            elif kind.endswith("tool_result"):
                call_id = req_str(block, "tool_use_id", block_where)
                name = call_names.get(call_id) or (None if kind == "tool_result" else kind)
                result = ToolResult(tool_call_id=call_id, name=name,
                                    content=_result_text(block.get("content"), f"{block_where}.content"),
                                    is_error=bool(opt_bool(block, "is_error", block_where)))
                if texts:  # what the turn said before this result stays before it
                    messages.append(Message(role=role, text=join(texts)))
                    texts = []
                messages.append(Message(role="tool", text=result.content, tool_call_id=call_id))
                results.append(result)
            else:
                texts.append(block_text(block, block_where))
        if texts:
            messages.append(Message(role=role, text=join(texts)))
    tools = [_tool(t, f"tools[{j}]") for j, t in enumerate(array(body.get("tools") or [], "tools"))]
    return RequestFields(model=opt_str(body, "model", "body"), stream=bool(opt_bool(body, "stream", "body")),
                         max_tokens=opt_int(body, "max_tokens", "body"), system=_system(body.get("system")),
                         messages=tuple(messages), tools=tuple(tools), tool_results=tuple(results))


def messages_response(doc: Any) -> ResponseFields:
    body = obj(doc, "body")
    if body.get("type") == "error":
        error = obj(body.get("error"), "error")
        return ResponseFields(error=opt_str(error, "message", "error") or json.dumps(error)[:1000])
    texts: list[str] = []
    calls: list[ToolCall] = []
    for j, raw_block in enumerate(array(body.get("content") or [], "content")):
        where = f"content[{j}]"
        block = obj(raw_block, where)
        kind = req_str(block, "type", where)
        if is_tool_use(kind):
            arguments = block.get("input", {})
            calls.append(ToolCall(id=opt_str(block, "id", where), name=req_str(block, "name", where),
                                  arguments_raw=strict_json.dumps(arguments), arguments=arguments))
        elif kind == "text":
            texts.append(req_str(block, "text", where))
    return ResponseFields(text="".join(texts), tool_calls=tuple(calls),
                          finish_reason=opt_str(body, "stop_reason", "body"), usage=usage(body.get("usage")))


def block_text(block: dict[str, Any], where: str) -> str:
    """A content block as text: text as it is, plain-text documents inlined, media and other kinds named."""
    kind = req_str(block, "type", where)
    if kind == "text":
        return req_str(block, "text", where)
    if kind in ("image", "document"):
        source = obj(block.get("source"), f"{where}.source")
        source_kind = opt_str(source, "type", f"{where}.source")
        if source_kind == "text":
            return req_str(source, "data", f"{where}.source")
        if source_kind == "content":
            return _result_text(source.get("content"), f"{where}.source.content")
        label = source.get("url") if source_kind == "url" else source.get("media_type") or source_kind
        return f"[{kind}: {str(label)[:2048]}]"
    if kind == "search_result":
        return join([opt_str(block, "title", where) or "", _result_text(block.get("content"), f"{where}.content")])
    # server tools' results (web search hits, code execution output): their readable fields are content too
    return join([f"[{kind}]", *(block[k] for k in _READABLE if isinstance(block.get(k), str))])


def usage(value: Any) -> Usage | None:
    """Prompt tokens include cache writes and reads: all of them were processed for this request."""
    if value is None:
        return None
    doc = obj(value, "usage")
    prompt = sum(opt_int(doc, k, "usage") or 0
                 for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
    return Usage(prompt_tokens=prompt, completion_tokens=opt_int(doc, "output_tokens", "usage") or 0)


def error_body(message: str, *, status: int = 403) -> dict[str, Any]:
    """Anthropic's error object; the SDK raises the exception class for ``status`` with it."""
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def error_reply(status: int, message: str) -> ErrorReply:
    return ErrorReply(status, json.dumps(error_body(message, status=status)).encode())


def _system(value: Any) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    return join([block_text(obj(b, f"system[{i}]"), f"system[{i}]") for i, b in enumerate(array(value, "system"))])


def _result_text(content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, dict):  # server tools answer with one block (or an error block)
        return block_text(content, where)
    return join([block_text(obj(b, f"{where}[{i}]"), f"{where}[{i}]") for i, b in enumerate(array(content, where))])


def _tool(raw: Any, where: str) -> ToolSpec:
    tool = obj(raw, where)
    return ToolSpec(name=req_str(tool, "name", where), description=opt_str(tool, "description", where) or "",
                    input_schema=obj(tool.get("input_schema") or {}, f"{where}.input_schema"))
