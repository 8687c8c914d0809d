"""The stream guard's adapter for OpenAI chat and completions streams (``data:`` chunks, then ``[DONE]``).

A tool call is complete when the next call of the same choice begins, when the choice gets a
``finish_reason``, or at ``[DONE]``. Pieces are merged as the openai SDK merges them (``id``, ``name``
and ``arguments`` strings concatenated), so the guard checks the call the client will run. The SDK
places calls and choices by list position, not by their ``index``, so an index that skips ahead or
goes back to a call already judged would be merged differently by different clients: the guard refuses
such a stream. Like the SDK, it ignores event names and stops reading at ``[DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, cast

from gateway.errors import ProtocolError
from gateway.events import Protocol, ToolCall, Usage
from gateway.protocols import openai, strict_json
from gateway.protocols.shape import ResponseFields, array, obj, opt_int, opt_str, tool_call
from gateway.protocols.sse import SSEEvent, encode_event
from gateway.protocols.stream_guard import Step

__all__ = ["OpenAIStream"]

_LEGACY = -1  # the call slot of a choice's legacy ``function_call``


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    done: bool = False

    def tool_call(self) -> ToolCall:
        return tool_call(self.id or None, self.name, "".join(self.arguments))


@dataclass
class _Choice:
    text: list[str] = field(default_factory=list)
    calls: list[_Call] = field(default_factory=list)
    legacy: _Call | None = None
    finish_reason: str | None = None

    def close(self) -> None:
        for call in (*self.calls, self.legacy):
            if call is not None:
                call.done = True


class OpenAIStream:
    def __init__(self, protocol: Protocol = "openai.chat", *, max_json_depth: int = 64) -> None:
        self.protocol: Protocol = protocol
        self.finished = False
        self._depth = max_json_depth
        self._choices: list[_Choice] = []
        self._usage: Usage | None = None
        self._error: str | None = None

    def on_event(self, event: SSEEvent) -> Step:
        if self.finished:
            raise ProtocolError("data after [DONE]")
        if event.data.startswith("[DONE]"):  # the SDK's test: a prefix
            self.finished = True
            completed = tuple(self._open_keys())
            for choice in self._choices:
                choice.close()
            return Step(completed=completed)
        chunk = obj(strict_json.loads(event.data, max_depth=self._depth), "chunk")
        if chunk.get("error"):
            self._error = openai.chat_response(chunk).get("error")
            return Step()
        touched: set[Hashable] = set()
        completed: list[Hashable] = []
        for i, raw in enumerate(array(chunk.get("choices") or [], "chunk.choices")):
            self._choice(obj(raw, f"chunk.choices[{i}]"), f"chunk.choices[{i}]", touched, completed)
        if chunk.get("usage") is not None:
            self._usage = openai.usage(chunk["usage"])
        return Step(frozenset(touched), tuple(completed))

    def call(self, key: Hashable) -> ToolCall:
        index, slot = cast(tuple[int, int], key)
        choice = self._choices[index]
        call = choice.legacy if slot == _LEGACY else choice.calls[slot]
        return cast(_Call, call).tool_call()

    def error_frame(self, message: str, *, blocked: bool) -> bytes:
        body = openai.error_body(message, status=403 if blocked else 502,
                                 code="modelgate_blocked" if blocked else "modelgate_stream_error")
        return encode_event(json.dumps(body)) + encode_event("[DONE]")

    def fields(self) -> ResponseFields:
        calls = [c.tool_call() for ch in self._choices for c in (*ch.calls, *([ch.legacy] if ch.legacy else []))]
        texts = ["".join(ch.text) for ch in self._choices]
        return ResponseFields(text="\n\n".join(t for t in texts if t), tool_calls=tuple(calls), usage=self._usage,
                              finish_reason=self._choices[0].finish_reason if self._choices else None,
                              error=self._error)

    def _choice(self, doc: dict[str, Any], where: str, touched: set[Hashable], completed: list[Hashable]) -> None:
        index = opt_int(doc, "index", where) or 0
        if index == len(self._choices):
            self._choices.append(_Choice())
        elif not 0 <= index < len(self._choices):
            raise ProtocolError(f"{where}.index {index} is not a choice seen so far or the next one")
        choice = self._choices[index]
        delta = obj(doc.get("delta") or {}, f"{where}.delta") if "delta" in doc else doc  # completions: no delta
        for key in ("content", "refusal", "text"):
            if text := opt_str(delta, key, where):
                choice.text.append(text)
        for j, raw in enumerate(array(delta.get("tool_calls") or [], f"{where}.delta.tool_calls")):
            piece = obj(raw, f"{where}.delta.tool_calls[{j}]")
            slot = opt_int(piece, "index", f"{where}.delta.tool_calls[{j}]")
            if slot is None or not 0 <= slot <= len(choice.calls):
                raise ProtocolError(f"{where}.delta.tool_calls[{j}].index must be the next call's index "
                                    f"({len(choice.calls)}) or an earlier one")
            if slot == len(choice.calls):
                completed += [(index, s) for s, c in enumerate(choice.calls) if not c.done]
                for c in choice.calls:
                    c.done = True
                choice.calls.append(_Call())
            self._merge(choice, choice.calls[slot], piece.get("function"), opt_str(piece, "id", where), where)
            touched.add((index, slot))
        if delta.get("function_call") is not None:
            choice.legacy = choice.legacy or _Call()
            self._merge(choice, choice.legacy, delta["function_call"], None, where)
            touched.add((index, _LEGACY))
        if (reason := opt_str(doc, "finish_reason", where)) is not None:
            choice.finish_reason = reason
            completed += [k for k in self._open_keys() if k[0] == index]
            choice.close()

    def _merge(self, choice: _Choice, call: _Call, function: Any, call_id: str | None, where: str) -> None:
        if call.done or choice.finish_reason is not None:
            raise ProtocolError(f"{where}: a tool call continues after it was complete")
        function = obj(function or {}, f"{where}.function")
        call.id += call_id or ""
        call.name += opt_str(function, "name", where) or ""
        call.arguments.append(opt_str(function, "arguments", where) or "")

    def _open_keys(self) -> list[tuple[int, int]]:
        keys = []
        for index, choice in enumerate(self._choices):
            keys += [(index, s) for s, c in enumerate(choice.calls) if not c.done]
            if choice.legacy is not None and not choice.legacy.done:
                keys.append((index, _LEGACY))
        return keys
