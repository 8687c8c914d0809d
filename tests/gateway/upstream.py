"""A scripted LLM and tool upstream for gateway tests: OpenAI chat (plain and streamed, with tool calls),
Anthropic messages, and a JSON tool API. It records what reached it, with the gateway's request id, so
tests can check that nothing arrived without its audit record.

The answer is chosen by the newest user or tool message with ``call NAME {json}``: the model calls tool
NAME with those arguments (a tool result that says so plays an injected instruction the model obeys). The
last user message may also say ``break the stream`` (garbage in the middle of an OpenAI event stream),
``cut the call`` (a stream that ends in the middle of a tool call's arguments) or ``answer at length N``;
anything else is answered with text.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = ["Upstream", "upstream_app"]

_CALL = re.compile(r"call (\w+) (\{.*\})", re.S)
_LENGTH = re.compile(r"answer at length (\d+)")


@dataclass
class Upstream:
    """What reached the upstream: (path, x-modelgate-request-id, headers) per request."""

    seen: list[tuple[str, str | None, dict[str, str]]] = field(default_factory=list)

    def ids(self) -> list[str]:
        return [rid for _, rid, _ in self.seen if rid]


def _prompt(messages: list[dict[str, Any]]) -> str:
    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    content = last.get("content") if last else ""
    return (content if isinstance(content, str) else " ".join(b.get("text", "") for b in content or ())) or ""


def _intent(messages: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """The newest ``call NAME {json}`` in the user's or a tool's message: a hijacked model obeys tool output."""
    for message in reversed(messages):
        if message.get("role") not in ("user", "tool"):
            continue
        content = message.get("content") or ""
        text = content if isinstance(content, str) else " ".join(b.get("text", "") for b in content)
        if match := _CALL.search(text):
            return match.group(1), json.loads(match.group(2))
    return None


def upstream_app(record: Upstream) -> Starlette:
    async def remember(request: Request) -> dict[str, Any]:
        record.seen.append((request.url.path, request.headers.get("x-modelgate-request-id"), dict(request.headers)))
        body = await request.body()
        return json.loads(body) if body else {}

    async def chat(request: Request) -> Response:
        body = await remember(request)
        prompt = _prompt(body.get("messages", []))
        intent = _intent(body.get("messages", []))
        model = body.get("model", "stub")
        if body.get("stream"):
            if "hang on" in prompt:
                return StreamingResponse(_stalled_stream(model), media_type="text/event-stream")
            if "break the stream" in prompt or "cut the call" in prompt:
                return StreamingResponse(_broken_stream(model, cut="cut the call" in prompt),
                                         media_type="text/event-stream")
            return StreamingResponse(_openai_stream(model, intent), media_type="text/event-stream")
        length = _LENGTH.search(prompt)
        text = "x" * int(length.group(1)) if length else "Paris is the capital of France."
        message: dict[str, Any] = {"role": "assistant", "content": text}
        finish = "stop"
        if intent:
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": intent[0],
                                                                  "arguments": json.dumps(intent[1])}}]}
            finish = "tool_calls"
        return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                             "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                             "usage": {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}})

    async def messages(request: Request) -> Response:
        body = await remember(request)
        intent = _intent(body.get("messages", []))
        content: list[dict[str, Any]] = [{"type": "text", "text": "Paris is the capital of France."}]
        if intent:
            content = [{"type": "tool_use", "id": "toolu_1", "name": intent[0], "input": intent[1]}]
        if body.get("stream"):
            return StreamingResponse(_anthropic_stream(body.get("model", "stub"), content),
                                     media_type="text/event-stream")
        return JSONResponse({"id": "msg_1", "type": "message", "role": "assistant", "model": body.get("model"),
                             "content": content, "stop_reason": "tool_use" if intent else "end_turn",
                             "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 7}})

    async def tool_api(request: Request) -> Response:
        body = await remember(request)
        return JSONResponse({"ok": True, "echo": body, "path": request.url.path})

    return Starlette(routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/api/{rest:path}", tool_api, methods=["GET", "POST"]),
    ])


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


async def _openai_stream(model: str, intent: tuple[str, dict[str, Any]] | None) -> AsyncIterator[bytes]:
    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _chunk(model, delta, finish)

    yield event({"role": "assistant", "content": ""})
    if intent is None:
        for piece in ("Paris ", "is the capital ", "of France."):
            yield event({"content": piece})
        yield event({}, "stop")
    else:
        arguments = json.dumps(intent[1])
        yield event({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                     "function": {"name": intent[0], "arguments": ""}}]})
        for start in range(0, len(arguments), 5):
            yield event({"tool_calls": [{"index": 0, "function": {"arguments": arguments[start:start + 5]}}]})
        yield event({}, "tool_calls")
    yield b"data: [DONE]\n\n"


async def _broken_stream(model: str, *, cut: bool) -> AsyncIterator[bytes]:
    """Text, then garbage where an event should be; or a tool call whose arguments stop half way, and no end."""
    yield _chunk(model, {"role": "assistant", "content": ""})
    if cut:
        yield _chunk(model, {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                             "function": {"name": "get_weather", "arguments": ""}}]})
        yield _chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Pa'}}]})
        return
    yield _chunk(model, {"content": "Paris "})
    yield b'data: {"choices": [{"delta": {"content": "is the\n\n'
    yield _chunk(model, {"content": "capital of France."})
    yield b"data: [DONE]\n\n"


async def _stalled_stream(model: str) -> AsyncIterator[bytes]:
    """One word, then nothing for longer than any test waits: for an agent that hangs up half way."""
    yield _chunk(model, {"role": "assistant", "content": ""})
    yield _chunk(model, {"content": "Paris "})
    await asyncio.sleep(60)
    yield b"data: [DONE]\n\n"


async def _anthropic_stream(model: str, content: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

    yield event("message_start", {"message": {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                                              "content": [], "stop_reason": None, "stop_sequence": None,
                                              "usage": {"input_tokens": 10, "output_tokens": 0}}})
    block = content[0]
    if block["type"] == "text":
        yield event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        yield event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": block["text"]}})
    else:
        yield event("content_block_start", {"index": 0, "content_block": {"type": "tool_use", "id": block["id"],
                                                                           "name": block["name"], "input": {}}})
        yield event("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta",
                                                                  "partial_json": json.dumps(block["input"])}})
    yield event("content_block_stop", {"index": 0})
    yield event("message_delta", {"delta": {"stop_reason": "end_turn" if block["type"] == "text" else "tool_use",
                                            "stop_sequence": None}, "usage": {"output_tokens": 7}})
    yield event("message_stop", {})
