"""The stream guard's adapter for Anthropic Messages streams (named events, ``message_start`` to ``message_stop``).

A ``tool_use`` block (and the server-run ``server_tool_use`` / ``mcp_tool_use``) is complete at its
``content_block_stop``. Its input is the concatenated ``input_json_delta`` pieces, or the start block's
``input`` when there were none, as the anthropic SDK builds it. The SDK appends blocks by position and
dispatches on the event name while the data carries its own ``type``, so the guard refuses a stream
whose block indices skip or repeat, whose pieces follow a block's stop, or whose event name and data
type disagree: each is a stream that two clients could read as different calls. A stream that reaches
``message_stop`` with a tool block still open never releases that block.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, cast

from gateway.errors import ProtocolError
from gateway.events import Protocol, ToolCall
from gateway.protocols import anthropic, strict_json
from gateway.protocols.shape import ResponseFields, obj, opt_int, opt_str, req_str, tool_call
from gateway.protocols.sse import SSEEvent, encode_event
from gateway.protocols.stream_guard import Step

__all__ = ["AnthropicStream"]


@dataclass
class _Block:
    kind: str
    text: list[str] = field(default_factory=list)
    id: str | None = None
    name: str = ""
    start_input: Any = None
    pieces: list[str] = field(default_factory=list)
    done: bool = False

    @property
    def is_call(self) -> bool:
        return anthropic.is_tool_use(self.kind)

    def tool_call(self) -> ToolCall:
        raw = "".join(self.pieces) or strict_json.dumps({} if self.start_input is None else self.start_input)
        return tool_call(self.id, self.name, raw)


class AnthropicStream:
    protocol: Protocol = "anthropic.messages"

    def __init__(self, *, max_json_depth: int = 64) -> None:
        self.finished = False
        self._started = False
        self._depth = max_json_depth
        self._blocks: list[_Block] = []
        self._usage: dict[str, Any] = {}
        self._stop_reason: str | None = None
        self._error: str | None = None

    def on_event(self, event: SSEEvent) -> Step:
        data = obj(strict_json.loads(event.data, max_depth=self._depth), "event data")
        kind = data.get("type", event.event)
        if not isinstance(kind, str) or event.event not in ("message", kind):
            raise ProtocolError(f"event {event.event!r} carries data of type {kind!r}")
        if kind == "ping":
            return Step()
        if kind == "error":
            self._error = anthropic.messages_response(data).get("error")
            return Step()
        if self.finished:
            raise ProtocolError(f"{kind} after message_stop")
        if kind == "message_start":
            return self._message_start(obj(data.get("message"), "message_start.message"))
        if not self._started:
            raise ProtocolError(f"{kind} before message_start")
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "content_block_stop":
            index, block = self._open_block(data, kind)
            block.done = True
            return Step(frozenset({index}), (index,)) if block.is_call else Step()
        if kind == "message_delta":
            delta = obj(data.get("delta") or {}, "message_delta.delta")
            self._stop_reason = opt_str(delta, "stop_reason", "message_delta.delta") or self._stop_reason
            self._merge_usage(data.get("usage"))
        elif kind == "message_stop":
            self.finished = True
        return Step()  # other kinds carry nothing the guard holds

    def call(self, key: Hashable) -> ToolCall:
        return self._blocks[cast(int, key)].tool_call()

    def error_frame(self, message: str, *, blocked: bool) -> bytes:
        return encode_event(json.dumps(anthropic.error_body(message, status=403 if blocked else 500)), event="error")

    def fields(self) -> ResponseFields:
        return ResponseFields(text="".join(t for b in self._blocks if b.kind == "text" for t in b.text),
                              tool_calls=tuple(b.tool_call() for b in self._blocks if b.is_call),
                              finish_reason=self._stop_reason,
                              usage=anthropic.usage(self._usage) if self._usage else None, error=self._error)

    def _message_start(self, message: dict[str, Any]) -> Step:
        if self._started:
            raise ProtocolError("a second message_start")
        if message.get("content"):
            raise ProtocolError("message_start carries content blocks")
        self._started = True
        self._merge_usage(message.get("usage"))
        return Step()

    def _block_start(self, data: dict[str, Any]) -> Step:
        index = opt_int(data, "index", "content_block_start")
        if index != len(self._blocks):
            raise ProtocolError(f"content_block_start.index {index} is not the next block ({len(self._blocks)})")
        raw = obj(data.get("content_block"), "content_block_start.content_block")
        block = _Block(req_str(raw, "type", "content_block"))
        if block.is_call:
            block.id, block.name = opt_str(raw, "id", "content_block"), req_str(raw, "name", "content_block")
            block.start_input = raw.get("input")
        elif block.kind == "text":
            block.text.append(opt_str(raw, "text", "content_block") or "")
        self._blocks.append(block)
        return Step(frozenset({index}) if block.is_call else frozenset())

    def _block_delta(self, data: dict[str, Any]) -> Step:
        index, block = self._open_block(data, "content_block_delta")
        delta = obj(data.get("delta"), "content_block_delta.delta")
        kind = req_str(delta, "type", "content_block_delta.delta")
        if kind == "text_delta" and block.kind == "text":
            block.text.append(req_str(delta, "text", "content_block_delta.delta"))
        elif kind == "input_json_delta" and block.is_call:
            block.pieces.append(req_str(delta, "partial_json", "content_block_delta.delta"))
        return Step(frozenset({index}) if block.is_call else frozenset())

    def _open_block(self, data: dict[str, Any], kind: str) -> tuple[int, _Block]:
        index = opt_int(data, "index", kind)
        if index is None or not 0 <= index < len(self._blocks) or self._blocks[index].done:
            raise ProtocolError(f"{kind}.index {index} is not an open content block")
        return index, self._blocks[index]

    def _merge_usage(self, usage: Any) -> None:
        """Usage counts are running totals: a later value replaces an earlier one, a missing one keeps it."""
        if usage is not None:
            self._usage.update((k, v) for k, v in obj(usage, "usage").items() if v is not None)
