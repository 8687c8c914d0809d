"""Tool calling: offering tools in the prompt, and reading calls back out of what the model wrote.

A template that knows about tools (it mentions ``tools``, as Qwen2 and Hermes templates do) gets them
as data. Any other template (SmolLM2's) gets a generic system-prompt section that lists the tools and
asks for Hermes calls, ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, which is also the
format the tool-aware ChatML templates use. Output is read as Hermes blocks or as Llama 3 style bare
JSON (``{"name": ..., "parameters": {...}}``). A call is returned only if it is strict JSON, names an
offered tool, and its arguments pass the tool's JSON schema; anything else stays plain text, so a client
never receives a call it cannot execute. A ``required`` or named ``tool_choice`` is asked for in the
prompt, not enforced by decoding: when the model does not comply the text comes back with
``finish_reason`` ``stop``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from engine.api_schema import ChatCompletionRequest, Message, NamedToolChoice, Tool
from sbom.errors import MalformedFileError
from sbom.strict_json import load_strict_json

__all__ = [
    "TOOL_PROMPT",
    "ParsedCall",
    "ToolOutput",
    "parse_tool_calls",
    "prompt_messages",
    "template_supports_tools",
    "with_system_section",
]

_HERMES = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
_PYTHON_TAG = "<|python_tag|>"

TOOL_PROMPT = """# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{tools}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> \
XML tags:
<tool_call>
{{"name": <function-name>, "arguments": <args-json-object>}}
</tool_call>"""
"""The Hermes function-calling prompt, for templates that cannot take tools themselves."""


@dataclass(frozen=True, slots=True)
class ParsedCall:
    id: str
    name: str
    arguments: str
    """Canonical JSON of the validated arguments object."""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True, slots=True)
class ToolOutput:
    content: str | None
    calls: tuple[ParsedCall, ...]


def template_supports_tools(source: str | None) -> bool:
    return source is not None and "tools" in source


def prompt_messages(request: ChatCompletionRequest, *, native: bool) -> tuple[list[dict[str, Any]], list[Any] | None]:
    """The messages (and, for a tool-aware template, the tools) to render for ``request``."""
    tools = request.active_tools
    messages = [_message(m, native) for m in request.messages]
    if not tools:
        return messages, None
    schemas = [t.model_dump(exclude_none=True) for t in tools]
    if native:
        return messages, schemas
    section = TOOL_PROMPT.format(tools="\n".join(json.dumps(s, ensure_ascii=False) for s in schemas))
    if isinstance(request.tool_choice, NamedToolChoice):
        section += f"\n\nYou must call the function {request.tool_choice.function.name}."
    elif request.tool_choice == "required":
        section += "\n\nYou must call at least one function."
    return with_system_section(messages, section), None


def with_system_section(messages: list[dict[str, Any]], section: str) -> list[dict[str, Any]]:
    """``section`` appended to the leading system message, or as one: templates expect a single one, first."""
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{messages[0]['content']}\n\n{section}"}, *messages[1:]]
    return [{"role": "system", "content": section}, *messages]


def _message(message: Message, native: bool) -> dict[str, Any]:
    """A template-ready message; without native tool support, calls and results become Hermes text."""
    role = "system" if message.role == "developer" else message.role
    if message.role == "tool":
        if native:
            return {"role": "tool", "content": message.text, "tool_call_id": message.tool_call_id}
        return {"role": "user", "content": f"<tool_response>\n{message.text}\n</tool_response>"}
    if not message.tool_calls:
        return {"role": role, "content": message.text}
    calls = [{"name": c.function.name, "arguments": _arguments(c.function.arguments)} for c in message.tool_calls]
    if native:
        return {"role": role, "content": message.text,
                "tool_calls": [{"id": c.id, "type": "function", "function": call}
                               for c, call in zip(message.tool_calls, calls, strict=True)]}
    blocks = [f"<tool_call>\n{json.dumps(c, ensure_ascii=False)}\n</tool_call>" for c in calls]
    return {"role": role, "content": "\n".join(filter(None, [message.text, *blocks]))}


def parse_tool_calls(text: str, tools: Sequence[Tool], *, tool_choice: object = None,
                     parallel: bool = True) -> ToolOutput:
    """Calls found in ``text``, or ``text`` alone when any candidate call is not a valid one."""
    plain = ToolOutput(text, ())
    candidates, rest = _candidates(text)
    if not candidates:
        return plain
    by_name = {t.function.name: t for t in tools}
    if isinstance(tool_choice, NamedToolChoice):
        by_name = {k: v for k, v in by_name.items() if k == tool_choice.function.name}
    calls = []
    for candidate in candidates:
        call = _validated(candidate, by_name)
        if call is None:
            return plain
        calls.append(call)
    return ToolOutput(rest.strip() or None, tuple(calls if parallel else calls[:1]))


def _candidates(text: str) -> tuple[list[str], str]:
    """The JSON texts that look like calls, and the text around them."""
    if "<tool_call>" in text:
        return [m.group(1).strip() for m in _HERMES.finditer(text)], _HERMES.sub("", text)
    body = text.strip().removeprefix(_PYTHON_TAG).strip()
    if fenced := _FENCE.match(body):
        body = fenced.group(1)
    if not body.startswith(("{", "[")):
        return [], text
    parsed = _loads(body)
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items or not all(isinstance(i, dict) and "name" in i for i in items):
        return [], text
    return [json.dumps(i) for i in items], ""


def _validated(candidate: str, tools: dict[str, Tool]) -> ParsedCall | None:
    call = _loads(candidate)
    if not isinstance(call, dict) or not isinstance(name := call.get("name"), str) or name not in tools:
        return None
    arguments = call.get("arguments", call.get("parameters", {}))
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        arguments = _loads(arguments)
    if not isinstance(arguments, dict):
        return None
    if next(Draft202012Validator(tools[name].function.parameters).iter_errors(arguments), None) is not None:
        return None
    return ParsedCall(f"call_{secrets.token_urlsafe(18)}", name, json.dumps(arguments, ensure_ascii=False))


def _arguments(text: str) -> Any:
    """An earlier call's arguments as an object for the template, or the text as the client sent it."""
    parsed = _loads(text)
    return parsed if isinstance(parsed, dict) else text


def _loads(text: str) -> Any:
    """Strict JSON, or None: no NaN, no duplicate keys, nothing after the value."""
    try:
        return load_strict_json(text, "tool call")
    except (MalformedFileError, ValueError):
        return None
