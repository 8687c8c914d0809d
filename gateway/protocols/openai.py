"""OpenAI chat completions and (legacy) completions: request and response bodies, and the error body.

Chat messages keep their order in ``messages``, except system and developer messages, which are joined
into ``system`` (as Anthropic carries them). A tool result is both a ``tool`` message, so the
conversation reads in order, and a ``ToolResult`` named after the assistant call it answers, so that a
detector looking for injected instructions finds every piece of untrusted content in one place. Earlier
assistant tool calls are named in that message's text (``[tool_call: name]``); their arguments were
checked when the model proposed them.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.errors import ProtocolError
from gateway.events import Message, ToolCall, ToolResult, ToolSpec, Usage
from gateway.protocols.shape import (
    RequestFields,
    ResponseFields,
    array,
    join,
    obj,
    opt_bool,
    opt_int,
    opt_str,
    req_str,
    tool_call,
)
from gateway.protocols.wire import ErrorReply

__all__ = [
    "chat_request",
    "chat_response",
    "completions_request",
    "completions_response",
    "content_text",
    "error_body",
    "error_reply",
    "usage",
]

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 409: "conflict_error", 413: "invalid_request_error",
                422: "unprocessable_entity_error", 429: "rate_limit_error"}


def chat_request(doc: Any) -> RequestFields:
    body = obj(doc, "body")
    system: list[str] = []
    messages: list[Message] = []
    results: list[ToolResult] = []
    call_names: dict[str, str] = {}  # tool_call_id -> function name, from earlier assistant turns
    for i, raw in enumerate(array(body.get("messages"), "messages")):
        where = f"messages[{i}]"
        message = obj(raw, where)
        role = req_str(message, "role", where)
        text = content_text(message.get("content"), f"{where}.content")
        name = opt_str(message, "name", where)
        if role in ("system", "developer"):
            system.append(text)
        elif role == "assistant":
            called = [_call(c, f"{where}.tool_calls[{j}]")
                      for j, c in enumerate(array(message.get("tool_calls") or [], f"{where}.tool_calls"))]
            if message.get("function_call") is not None:
                called.append(_function_call(message["function_call"], f"{where}.function_call"))
            call_names.update((c.id, c.name) for c in called if c.id)
            named = [f"[tool_call: {c.name}]" for c in called]
            messages.append(Message(role=role, name=name, text=join([text, *named])))
        elif role == "tool":
            call_id = req_str(message, "tool_call_id", where)
            messages.append(Message(role=role, text=text, tool_call_id=call_id))
            results.append(ToolResult(tool_call_id=call_id, name=call_names.get(call_id), content=text))
        elif role == "function":
            name = req_str(message, "name", where)
            messages.append(Message(role=role, text=text, name=name))
            results.append(ToolResult(name=name, content=text))
        else:
            messages.append(Message(role=role, text=text, name=name))
    tools = [_tool(t, f"tools[{j}]") for j, t in enumerate(array(body.get("tools") or [], "tools"))]
    tools += [_function(f, f"functions[{j}]") for j, f in enumerate(array(body.get("functions") or [], "functions"))]
    max_tokens = opt_int(body, "max_completion_tokens", "body")
    return RequestFields(model=opt_str(body, "model", "body"), stream=bool(opt_bool(body, "stream", "body")),
                         max_tokens=max_tokens if max_tokens is not None else opt_int(body, "max_tokens", "body"),
                         system="\n\n".join(s for s in system if s), messages=tuple(messages), tools=tuple(tools),
                         tool_results=tuple(results))


def completions_request(doc: Any) -> RequestFields:
    body = obj(doc, "body")
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        text = prompt
    elif isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        text = "\n".join(prompt)
    elif isinstance(prompt, list) and all(isinstance(p, int) or isinstance(p, list) for p in prompt):
        text = f"[{len(prompt)} token prompt(s) given as ids]"
    elif prompt is None:
        text = ""
    else:
        raise ProtocolError("prompt must be a string, an array of strings or of token ids")
    return RequestFields(model=opt_str(body, "model", "body"), stream=bool(opt_bool(body, "stream", "body")),
                         max_tokens=opt_int(body, "max_tokens", "body"),
                         messages=(Message(role="user", text=text),) if text else ())


def chat_response(doc: Any) -> ResponseFields:
    body = obj(doc, "body")
    if (error := _error_message(body)) is not None:
        return ResponseFields(error=error)
    texts: list[str] = []
    calls: list[ToolCall] = []
    finish: str | None = None
    for i, raw in enumerate(array(body.get("choices") or [], "choices")):
        where = f"choices[{i}]"
        choice = obj(raw, where)
        message = obj(choice.get("message") or {}, f"{where}.message")
        texts.append(join([content_text(message.get("content"), f"{where}.message.content"),
                           opt_str(message, "refusal", f"{where}.message") or ""]))
        calls += [_call(c, f"{where}.message.tool_calls[{j}]")
                  for j, c in enumerate(array(message.get("tool_calls") or [], f"{where}.message.tool_calls"))]
        if message.get("function_call") is not None:
            calls.append(_function_call(message["function_call"], f"{where}.message.function_call"))
        finish = finish or opt_str(choice, "finish_reason", where)
    return ResponseFields(text="\n\n".join(t for t in texts if t), tool_calls=tuple(calls), finish_reason=finish,
                          usage=usage(body.get("usage")))


def completions_response(doc: Any) -> ResponseFields:
    body = obj(doc, "body")
    if (error := _error_message(body)) is not None:
        return ResponseFields(error=error)
    choices = [obj(c, f"choices[{i}]") for i, c in enumerate(array(body.get("choices") or [], "choices"))]
    texts = [opt_str(c, "text", f"choices[{i}]") or "" for i, c in enumerate(choices)]
    finish = next((c["finish_reason"] for c in choices if isinstance(c.get("finish_reason"), str)), None)
    return ResponseFields(text="\n\n".join(t for t in texts if t), finish_reason=finish, usage=usage(body.get("usage")))


def content_text(content: Any, where: str) -> str:
    """A message's content flattened: text parts as they are, images, audio and files named."""
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[str] = []
    for i, raw in enumerate(array(content, where)):
        part = obj(raw, f"{where}[{i}]")
        kind = req_str(part, "type", f"{where}[{i}]")
        if kind in ("text", "refusal"):
            parts.append(req_str(part, kind, f"{where}[{i}]"))
        elif kind == "image_url":
            parts.append(f"[image_url: {_url(obj(part.get('image_url'), f'{where}[{i}].image_url'))}]")
        elif kind == "file":
            file = obj(part.get("file"), f"{where}[{i}].file")
            parts.append(f"[file: {file.get('filename') or file.get('file_id') or 'inline'}]")
        else:
            parts.append(f"[{kind}]")
    return join(parts)


def usage(value: Any) -> Usage | None:
    if value is None:
        return None
    doc = obj(value, "usage")
    return Usage(prompt_tokens=opt_int(doc, "prompt_tokens", "usage") or 0,
                 completion_tokens=opt_int(doc, "completion_tokens", "usage") or 0)


def error_body(message: str, *, status: int = 403, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object; the SDK raises the exception class for ``status`` with it."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def error_reply(status: int, message: str, *, code: str | None = None) -> ErrorReply:
    return ErrorReply(status, json.dumps(error_body(message, status=status, code=code)).encode())


def _error_message(body: dict[str, Any]) -> str | None:
    error = body.get("error")
    if error is None:
        return None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return json.dumps(error)[:1000]


def _url(image: dict[str, Any]) -> str:
    url = req_str(image, "url", "image_url")
    return f"data URL of {len(url)} characters" if url.startswith("data:") else url[:2048]


def _call(raw: Any, where: str) -> ToolCall:
    call = obj(raw, where)
    if opt_str(call, "type", where) == "custom":  # free-text input, not JSON
        custom = obj(call.get("custom"), f"{where}.custom")
        return tool_call(opt_str(call, "id", where), req_str(custom, "name", f"{where}.custom"),
                         opt_str(custom, "input", f"{where}.custom") or "")
    function = obj(call.get("function"), f"{where}.function")
    return tool_call(opt_str(call, "id", where), req_str(function, "name", f"{where}.function"),
                     opt_str(function, "arguments", f"{where}.function") or "")


def _function_call(raw: Any, where: str) -> ToolCall:
    function = obj(raw, where)
    return tool_call(None, req_str(function, "name", where), opt_str(function, "arguments", where) or "")


def _tool(raw: Any, where: str) -> ToolSpec:
    tool = obj(raw, where)
    kind = opt_str(tool, "type", where) or "function"
    if kind == "function":
        return _function(tool.get("function"), f"{where}.function")
    if kind == "custom":
        custom = obj(tool.get("custom"), f"{where}.custom")
        return ToolSpec(name=req_str(custom, "name", f"{where}.custom"),
                        description=opt_str(custom, "description", f"{where}.custom") or "")
    return ToolSpec(name=kind)


def _function(raw: Any, where: str) -> ToolSpec:
    function = obj(raw, where)
    return ToolSpec(name=req_str(function, "name", where), description=opt_str(function, "description", where) or "",
                    input_schema=obj(function.get("parameters") or {}, f"{where}.parameters"))
