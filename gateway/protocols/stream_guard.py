"""Holding streamed tool calls until their arguments are complete and checked, then releasing them unchanged.

A model's tool call arrives in pieces (OpenAI ``tool_calls`` deltas, Anthropic ``input_json_delta``s),
and the agent acts on it as soon as it is whole, so it must be judged before its last piece reaches
the agent. The guard forwards text the moment it arrives and holds every event from the first piece of
a call on. When the call is complete (the adapter says when), ``check`` judges it: allowed, the held
events go out byte for byte; blocked, they are dropped, a protocol-correct in-stream error goes out in
their place, and nothing after it. Everything fails closed:

- a call that is still incomplete when the stream ends, breaks or outgrows ``Limits.max_held_bytes`` is
  reported ``unchecked`` and never released;
- a check that raises or answers something other than allow/alert/block blocks;
- a stream the adapter cannot follow (bad JSON, pieces of a call after it was judged, indices that
  skip, which clients would merge differently) stops with an error, holding back what was held.

Protocol knowledge lives in the adapters (``openai_stream``, ``anthropic_stream``); this module only
keeps the queue in order. ``result()`` reassembles the whole stream for the audit log at any time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol, TypeVar

from gateway.errors import ProtocolError, SSEError
from gateway.events import Protocol as EventProtocol
from gateway.events import ResponseEvent, ToolCall
from gateway.findings import Action
from gateway.protocols.shape import ResponseFields
from gateway.protocols.sse import Frame, SSEDecoder, SSEEvent
from gateway.protocols.wire import Limits

__all__ = ["Outcome", "Step", "StreamAdapter", "StreamGuard", "StreamResult", "ToolCheck", "ToolCheckFn", "Verdict",
           "reassemble", "verdict_of"]

Outcome = Literal["allow", "alert", "block", "unchecked"]
_T = TypeVar("_T")
_ACTIONS = ("allow", "alert", "block")


class Verdict(NamedTuple):
    action: Action
    reason: str = ""


ToolCheckFn = Callable[[ToolCall], Verdict]


@dataclass(frozen=True)
class ToolCheck:
    """What became of one tool call: judged by the check, or ``unchecked`` (and then never released)."""

    call: ToolCall
    outcome: Outcome
    reason: str = ""


@dataclass(frozen=True)
class StreamResult:
    response: ResponseEvent
    """The stream as the upstream sent it, reassembled (including calls that were held back); its
    ``parse_error`` says why the guard could not follow it, if it could not."""
    checks: tuple[ToolCheck, ...]
    blocked: bool
    """The guard replaced the rest of the stream with an error because a check blocked a call."""
    error: str | None
    """Why the guard stopped the stream (a block included), or how it was incomplete; None for a clean stream."""


class Step(NamedTuple):
    """What one event means for the guard."""

    touched: frozenset[Hashable] = frozenset()
    """The calls this event carries a piece of."""
    completed: tuple[Hashable, ...] = ()
    """The calls this event completes, in order."""


class StreamAdapter(Protocol):
    """One protocol's stream semantics; raises ``ProtocolError`` on a stream it cannot follow."""

    protocol: EventProtocol
    finished: bool
    """The stream's own end marker (``[DONE]``, ``message_stop``) has been seen."""

    def on_event(self, event: SSEEvent) -> Step: ...
    def call(self, key: Hashable) -> ToolCall: ...
    def error_frame(self, message: str, *, blocked: bool) -> bytes: ...
    def fields(self) -> ResponseFields: ...


def verdict_of(check: Callable[[_T], object], subject: _T) -> Verdict:
    """Run a check; anything but a proper allow/alert/block answer (an exception included) is a block."""
    try:
        answer = check(subject)
    except Exception as exc:  # a failing check must not let the call through
        return Verdict("block", f"the check failed: {type(exc).__name__}: {exc}")
    if isinstance(answer, tuple) and len(answer) == 2 and answer[0] in _ACTIONS and isinstance(answer[1], str):
        return Verdict(*answer)
    return Verdict("block", f"the check answered {answer!r}, not (allow|alert|block, reason)")


class StreamGuard:
    """``feed`` each upstream chunk and forward what it returns; ``close`` at the end of the upstream.

    While it holds, ``feed`` returns ``b""``. A mitmproxy ``response.stream`` callable must forward that as
    no chunk at all (``[]``): mitmproxy writes an empty chunk of a chunked HTTP/1 body as ``0\\r\\n\\r\\n``,
    which ends the body. It calls the callable with ``b""`` at the end, which is the time to ``close``.
    """

    def __init__(self, adapter: StreamAdapter, check: ToolCheckFn, *, request_id: str, status: int = 200,
                 limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._adapter, self._check = adapter, check
        self._request_id, self._status = request_id, status
        self._decoder = SSEDecoder(max_event_bytes=self.limits.max_event_bytes)
        self._queue: deque[tuple[bytes, frozenset[Hashable]]] = deque()
        self._held = 0
        self._open: dict[Hashable, None] = {}  # calls begun and not complete, in the order they began
        self._checks: list[ToolCheck] = []
        self._size = 0
        self._stopped = self._blocked = self._end_released = False
        self._error: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        self._size += len(chunk)
        if self._stopped:
            return b""
        try:
            frames = self._decoder.feed(chunk)
        except SSEError as exc:
            return self._stop(f"broken event stream: {exc.reason}")
        return self._frames(frames)

    def close(self) -> bytes:
        if self._stopped:
            return b""
        try:
            out = self._frames(self._decoder.close())
        except SSEError as exc:
            return self._stop(f"broken event stream: {exc.reason}")
        if self._stopped:
            return out
        if self._open:
            return out + self._stop("the stream ended before a tool call in it was complete")
        if not self._adapter.finished:
            self._error = "the stream ended without its end marker"
        return out

    def result(self) -> StreamResult:
        fields = self._adapter.fields()
        pending = [ToolCheck(self._adapter.call(k), "unchecked", "incomplete when the result was taken")
                   for k in self._open]
        response = ResponseEvent(request_id=self._request_id, protocol=self._adapter.protocol, status=self._status,
                                 body_size=self._size, parse_error=None if self._blocked else self._error, **fields)
        return StreamResult(response, (*self._checks, *pending), self._blocked, self._error)

    def _frames(self, frames: list[Frame]) -> bytes:
        out = bytearray()
        for frame in frames:
            out += self._frame(frame)
            if self._stopped:
                break
        return bytes(out)

    def _frame(self, frame: Frame) -> bytes:
        step = Step()
        if frame.event is not None:
            try:
                step = self._adapter.on_event(frame.event)
            except ProtocolError as exc:
                return self._stop(f"malformed stream: {exc.reason}")
        self._queue.append((frame.raw, step.touched))
        self._held += len(frame.raw)
        self._open.update((k, None) for k in step.touched)
        for key in step.completed:
            self._open.pop(key, None)
        for n, key in enumerate(step.completed):
            call = self._adapter.call(key)
            verdict = verdict_of(self._check, call)
            self._checks.append(ToolCheck(call, verdict.action, verdict.reason))
            if verdict.action == "block":
                skipped = [self._adapter.call(k) for k in step.completed[n + 1:]]
                self._checks += [ToolCheck(c, "unchecked", "not checked: an earlier call was blocked") for c in skipped]
                self._blocked = True
                return self._stop(f"modelgate blocked the tool call {call.name!r}: {verdict.reason}")
        out = self._release()
        if self._open and self._held > self.limits.max_held_bytes:
            return out + self._stop(f"a tool call grew beyond {self.limits.max_held_bytes} bytes held for checking")
        return out

    def _release(self) -> bytes:
        out = bytearray()
        while self._queue and not self._queue[0][1] & self._open.keys():
            raw, _ = self._queue.popleft()
            self._held -= len(raw)
            out += raw
        if not self._queue and self._adapter.finished:
            self._end_released = True
        return bytes(out)

    def _stop(self, reason: str) -> bytes:
        """Withhold everything held and all that follows; the agent gets an error event instead."""
        self._stopped = True
        self._error = reason
        self._checks += [ToolCheck(self._adapter.call(k), "unchecked", reason) for k in self._open]
        self._open.clear()
        self._queue.clear()
        return b"" if self._end_released else self._adapter.error_frame(reason, blocked=self._blocked)


def reassemble(adapter: StreamAdapter, body: bytes, limits: Limits | None = None) -> ResponseFields:
    """A whole buffered event stream read into response fields, for bodies that were not streamed through a guard."""
    limits = limits or Limits()
    decoder = SSEDecoder(max_event_bytes=limits.max_event_bytes)
    error = None
    try:
        for frame in (*decoder.feed(body), *decoder.close()):
            if frame.event is not None:
                adapter.on_event(frame.event)
    except ProtocolError as exc:  # SSEError included
        error = f"malformed stream: {exc.reason}"
    return ResponseFields(**adapter.fields(), parse_error=error)
