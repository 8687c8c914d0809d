"""The gatekeeper: every request is normalised, judged, durably recorded, and only then forwarded.

For each flow, in mitmproxy's order:

- ``request``: the body becomes a ``RequestEvent``; the policy (``gateway.enforce``) and the detectors
  judge it; the request's audit record is **committed before anything is forwarded** (``AuditWriter``
  batches concurrent requests into one commit). If the record cannot be written the agent gets 503 and
  nothing is forwarded, unless the policy's audit section says ``fail_closed: false``. A blocked request
  gets the error its protocol's client understands (OpenAI, Anthropic, JSON-RPC) and is recorded too.
- ``responseheaders``: an event stream is passed through as it arrives, through a guard that holds each
  tool call until its arguments are complete and checked (``StreamGuard``; ``McpStreamGuard`` for MCP),
  so a blocked call never reaches the agent. Other bodies are read whole and judged in ``response``, and
  so is a model's answer that may be held (``gateway.holds``): a live stream cannot wait for a reviewer.
- ``response``: the answer becomes a ``ResponseEvent``; tool calls in it, MCP results and listings are
  judged; a blocked buffered answer is replaced by an error; the response record is queued (its write
  is retried, never dropped). ``error``: an upstream that failed is recorded as such.

Detectors on a small body run inline, where a thread hop would cost more than they do; a big body's run
off the event loop (``asyncio.to_thread``), and so does every run while one of those is under way, so the
loop never waits for a session's lock held by one. The stream guard's checks run inline, as the stream
callback is synchronous, and they are policy lookups and detector passes of microseconds. A bug in the
request or response hook answers 500: mitmproxy would log it and let the flow through, unjudged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from mitmproxy import http

from gateway.addons.auth import AGENT, Caller, profile_of
from gateway.addons.fields import joined, rewrite, text_fields
from gateway.audit.process import AuditLog
from gateway.enforce import check_request, check_response, check_tool_call
from gateway.errors import AuditUnavailable
from gateway.events import RequestEvent, ResponseEvent, ToolCall
from gateway.findings import Finding, decide
from gateway.holds import Holds, await_review, may_hold, refuse_held
from gateway.metrics import GatewayMetrics
from gateway.protocols import (
    ErrorReply,
    Headers,
    Limits,
    McpStreamGuard,
    RawRequest,
    RawResponse,
    StreamGuard,
    Verdict,
    error_reply,
    guard_stream,
    normalise_request,
    normalise_response,
)
from gateway.ratelimit import RateLimiter
from policies.gateway import GatewayProfile
from policies.schema import Policy

__all__ = ["REQUEST_ID_HEADER", "STATE", "FlowState", "Gatekeeper", "Inspector"]

log = logging.getLogger("modelgate.gateway")

STATE = "modelgate.state"
REQUEST_ID_HEADER = "x-modelgate-request-id"
"""Sent upstream with every forwarded request: the id of its audit record, for correlation."""
_LLM = frozenset({"openai.chat", "openai.completions", "anthropic.messages"})
_CONTENT_TYPE = frozenset({b"content-type"})
_FORWARD = frozenset({REQUEST_ID_HEADER.encode()})
_FORWARD_GUARDED = _FORWARD | {b"accept-encoding"}
"""Fields a forwarded request loses: a request id the agent sent itself, and where a guard reads the answer,
Accept-Encoding (so that the answer comes uncompressed)."""
_STATUS = {"policy.rate_limited": 429, "policy.unparsable_request": 400, "policy.request_too_large": 413}
"""The status of a refusal for one reason; several reasons, or any other, give 403."""
INLINE_DETECTION_BYTES = 2048
"""Bodies up to this size are inspected on the event loop: the detectors took ~0.1 µs a byte of a chat
request (~110 µs a KiB), a hop to a worker thread and back ~190 µs (measured on the 2-core dev machine)."""
_BUG = b'{"error": {"message": "modelgate failed on this request and did not forward it", "type": "server_error"}}'
T = TypeVar("T")


class Inspector(Protocol):
    """The detection pipeline, as the gatekeeper calls it."""

    def on_request(self, event: RequestEvent) -> list[Finding]: ...
    def on_response(self, event: ResponseEvent, request: RequestEvent) -> list[Finding]: ...
    def on_tool_call(self, call: ToolCall, request: RequestEvent) -> list[Finding]: ...


@dataclass
class FlowState:
    """What the gatekeeper knows of one flow, from its request to its response (``flow.metadata[STATE]``)."""

    event: RequestEvent
    profile: GatewayProfile
    findings: tuple[Finding, ...]
    started: float
    answered: bool = False
    """The gateway answered (blocked, 503): the upstream was never asked."""
    guard: StreamGuard | McpStreamGuard | None = None
    stream_findings: list[Finding] = field(default_factory=list)
    response_findings: tuple[Finding, ...] = ()
    """What the response's record says (set when it is recorded)."""


class Gatekeeper:
    def __init__(self, policy: Policy, writer: AuditLog, *, inspector: Inspector | None = None,
                 limiter: RateLimiter | None = None, limits: Limits | None = None,
                 metrics: GatewayMetrics | None = None, holds: Holds | None = None) -> None:
        self.policy, self.writer, self.inspector = policy, writer, inspector
        self.metrics, self.holds = metrics, holds
        self.limiter = limiter or RateLimiter()
        self.limits = limits or Limits()
        self._off_loop = 0
        """Detector runs under way on worker threads."""
        self._profiles: dict[tuple[str, str], GatewayProfile] = {}

    # -- request -----------------------------------------------------------------------------------

    async def request(self, flow: http.HTTPFlow) -> None:
        await self._fail_closed(flow, self._request(flow), "request")

    async def _request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.request.method == "CONNECT":
            return
        caller = flow.metadata.get(AGENT)
        if not isinstance(caller, Caller):  # AgentAuth answers every unauthenticated flow; fail closed anyway
            flow.response = _make(ErrorReply(401, b'{"error": {"message": "modelgate: no agent"}}'))
            return
        fields = text_fields(flow.request.headers)
        raw = _raw_request(flow, fields)
        event = normalise_request(raw, request_id=_request_id(), agent=caller.agent.name,
                                  direction=caller.direction, limits=self.limits)
        profile = self._profile(caller)
        findings = check_request(event, profile, self.limiter)
        if self.inspector is not None:
            findings += tuple(await self._detect(event.body_size, self.inspector.on_request, event))
        state = FlowState(event, profile, findings, time.monotonic())
        flow.metadata[STATE] = state
        try:
            await self.writer.record_request(event, findings, body=self._body(raw.body), headers=fields)
        except AuditUnavailable as exc:
            if self.policy.gateway.audit.fail_closed:
                self._answer(flow, state, 503, f"modelgate cannot record this request, so it is refused: {exc.reason}")
                return
            log.critical("UNRECORDED request %s forwarded (audit fail_closed is off): %s", event.request_id,
                         exc.reason)
        if decide(findings) == "hold":  # waits for a reviewer; rejected or expired, it is blocked just below
            findings = state.findings = tuple(await await_review(self.holds, event, findings, stage="request"))
        if decide(findings) == "block":
            blocking = [f for f in findings if f.action == "block"]
            status = _STATUS.get(blocking[0].rule, 403) if len({f.rule for f in blocking}) == 1 else 403
            self._answer(flow, state, status, "modelgate blocked this request: " + "; ".join(
                f.reason for f in blocking))
            retry = next((e.split("=", 1)[1] for f in blocking for e in f.evidence if e.startswith("retry_after_s=")),
                         None)
            if status == 429 and retry is not None and flow.response is not None:
                flow.response.headers["retry-after"] = retry
            return
        drop = _FORWARD_GUARDED if event.protocol in _LLM or event.protocol == "mcp" else _FORWARD
        rewrite(flow.request.headers, drop, ((REQUEST_ID_HEADER, event.request_id),))

    def _profile(self, caller: Caller) -> GatewayProfile:
        """``profile_of``, once per agent name and issued profile (the policy does not change while it runs)."""
        key = (caller.agent.name, caller.agent.profile)
        found = self._profiles.get(key)
        if found is None:
            found = self._profiles[key] = profile_of(caller.agent, self.policy.gateway)
        return found

    def _answer(self, flow: http.HTTPFlow, state: FlowState, status: int, message: str) -> None:
        state.answered = True
        self.limiter.release(state.event.request_id)
        flow.response = _make(error_reply(state.event, status, message))

    # -- response ----------------------------------------------------------------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = flow.metadata.get(STATE)
        if not isinstance(state, FlowState) or state.answered or flow.response is None:
            return
        content_type = joined(flow.response.headers, _CONTENT_TYPE).get(b"content-type", "")
        if content_type.partition(";")[0].strip().lower() != "text/event-stream":
            return
        event = state.event
        if event.protocol in _LLM:
            if may_hold(event, state.profile, self.policy.detection if self.inspector else None):
                return  # read whole and judged in ``response``, where a held answer can wait
            guard: StreamGuard | McpStreamGuard = guard_stream(event, lambda call: self._stream_check(call, state),
                                                               status=flow.response.status_code, limits=self.limits)
        elif event.protocol == "mcp":
            pending = {event.mcp_id: event} if event.mcp_id is not None else {}
            guard = McpStreamGuard(request_id=event.request_id, pending=pending,
                                   check=lambda response: self._mcp_check(response, state),
                                   status=flow.response.status_code, limits=self.limits)
        else:
            flow.response.stream = True  # an opaque event stream: forwarded as it comes, its size recorded
            return
        state.guard = guard
        flow.response.stream = _streamer(guard)

    async def response(self, flow: http.HTTPFlow) -> None:
        await self._fail_closed(flow, self._response(flow), "response")

    async def _response(self, flow: http.HTTPFlow) -> None:
        state = flow.metadata.get(STATE)
        if not isinstance(state, FlowState) or flow.response is None:
            return
        if state.answered:
            answer = normalise_response(_raw_response(flow.response), state.event, limits=self.limits)
            self._record_response(flow, state, answer, state.findings)
            return
        if state.guard is not None:
            answer = _guarded(state.guard, state.event, flow.response.status_code)
            findings = [*state.stream_findings, *check_response(answer, state.event, state.profile, self.limiter)]
        elif flow.response.stream:
            answer = ResponseEvent(request_id=state.event.request_id, protocol=state.event.protocol,
                                   status=flow.response.status_code, parse_error="streamed opaque body, not inspected")
            findings = list(check_response(answer, state.event, state.profile, self.limiter))
        else:
            raw = _raw_response(flow.response)
            answer = normalise_response(raw, state.event, limits=self.limits)
            inspected = (self._inspect_response(answer, state) if self.inspector is None  # policy lookups only
                         else await self._detect(len(raw.body), self._inspect_response, answer, state))
            findings = [*check_response(answer, state.event, state.profile, self.limiter), *inspected]
            if decide(findings) == "hold":
                findings = await await_review(self.holds, state.event, findings, stage="response",
                                              calls=answer.tool_calls)
            if decide(findings) == "block":  # the record keeps the upstream's body: it is the evidence
                reasons = "; ".join(f.reason for f in findings if f.action == "block")
                flow.response = _make(error_reply(state.event, 403, f"modelgate blocked the response: {reasons}"))
                answer = answer.model_copy(update={"status": 403})
            self._record_response(flow, state, answer, findings, body=raw.body)
            return
        self._record_response(flow, state, answer, findings)

    async def error(self, flow: http.HTTPFlow) -> None:
        state = flow.metadata.get(STATE)
        if state is None:
            await self._record_refused_by_proxy(flow)
            return
        if not isinstance(state, FlowState) or state.answered:
            return
        self.limiter.release(state.event.request_id)
        message = flow.error.msg if flow.error else "the upstream failed"
        self._record_response(flow, state, self._interrupted(flow, state, message), state.stream_findings)

    @staticmethod
    def _interrupted(flow: http.HTTPFlow, state: FlowState, message: str) -> ResponseEvent:
        """The record of a flow that failed on the way: a stream passed through (the agent has its status and
        part of it, or hung up) as far as it went, with the error; anything else as the upstream's failure."""
        if state.guard is not None and flow.response is not None:
            return _guarded(state.guard, state.event, flow.response.status_code).model_copy(update={"error": message})
        return ResponseEvent(request_id=state.event.request_id, protocol=state.event.protocol, status=502,
                             error=message)

    async def _record_refused_by_proxy(self, flow: http.HTTPFlow) -> None:
        """mitmproxy refused the request before the gatekeeper saw it (a body over the size limit, a malformed
        request line): nothing was forwarded, and the refusal is recorded like any other."""
        caller = flow.metadata.get(AGENT)
        if not isinstance(caller, Caller) or flow.request.method == "CONNECT":
            return
        message = flow.error.msg if flow.error else "refused by the proxy"
        request = flow.request
        fields = text_fields(request.headers)
        raw = RawRequest(request.method, request.scheme, request.pretty_host, request.port, request.path,
                         Headers(fields))
        event = normalise_request(raw, request_id=_request_id(), agent=caller.agent.name,
                                  direction=caller.direction, limits=self.limits)
        event = event.model_copy(update={"parse_error": message})
        finding = Finding(rule="gateway.refused_by_proxy", action="block", reason=message, severity="medium")
        status = 413 if "body_size_limit" in message else 400
        if self.metrics is not None:
            self.metrics.request(event.protocol, "block", status, None, (finding,))
        try:
            await self.writer.record_request(event, (finding,), headers=fields)
            self.writer.record_response(ResponseEvent(request_id=event.request_id, protocol=event.protocol,
                                                      status=status, error=message), (finding,))
        except AuditUnavailable as exc:
            log.critical("refused request %s not recorded: %s", event.request_id, exc.reason)

    async def _fail_closed(self, flow: http.HTTPFlow, hook: Awaitable[None], name: str) -> None:
        """Run a hook; if our code fails, the agent gets a 500 and nothing is forwarded (or passed back)."""
        try:
            await hook
        except Exception:
            log.exception("the gatekeeper's %s hook failed on %s %s; answered 500", name, flow.request.method,
                          flow.request.pretty_url)
            state = flow.metadata.get(STATE)
            if isinstance(state, FlowState):
                state.answered = True
                if name == "request":
                    self.limiter.release(state.event.request_id)
            flow.response = _make(ErrorReply(500, _BUG))

    # -- checks ------------------------------------------------------------------------------------

    async def _detect(self, size: int, check: Callable[..., T], *args: object) -> T:
        if size <= INLINE_DETECTION_BYTES and not self._off_loop:
            return check(*args)
        self._off_loop += 1
        try:
            return await asyncio.to_thread(check, *args)
        finally:
            self._off_loop -= 1

    def _tool_findings(self, call: ToolCall, state: FlowState) -> list[Finding]:
        findings = list(check_tool_call(call, state.profile))
        if self.inspector is not None:
            findings += self.inspector.on_tool_call(call, state.event)
        return findings

    def _inspect_response(self, answer: ResponseEvent, state: FlowState) -> list[Finding]:
        findings = [f for call in answer.tool_calls for f in self._tool_findings(call, state)]
        if self.inspector is not None:
            findings += self.inspector.on_response(answer, state.event)
        return findings

    def _stream_check(self, call: ToolCall, state: FlowState) -> Verdict:
        findings = refuse_held(self._tool_findings(call, state), "a live stream cannot wait for a reviewer")
        state.stream_findings += findings
        return _verdict(findings)

    def _mcp_check(self, response: ResponseEvent, state: FlowState) -> Verdict:
        findings = refuse_held([*check_response(response, state.event, state.profile, self.limiter),
                                *(self.inspector.on_response(response, state.event) if self.inspector else ())],
                               "a live stream cannot wait for a reviewer")
        state.stream_findings += findings
        return _verdict(findings)

    def _record_response(self, flow: http.HTTPFlow, state: FlowState, answer: ResponseEvent,
                         findings: list[Finding] | tuple[Finding, ...], *, body: bytes | None = None) -> None:
        """``answer.status`` is what the agent got; ``body`` what the upstream sent (default: the flow's, unless
        it was streamed through and not kept)."""
        latency_us = round((time.monotonic() - state.started) * 1e6)
        state.response_findings = tuple(findings)
        if self.metrics is not None:  # an answered request's findings are its request's: counted once
            every = (*state.findings, *(() if state.answered else findings))
            self.metrics.request(state.event.protocol, decide(every), answer.status, latency_us / 1e6, every)
        if body is None and flow.response is not None and not flow.response.stream:
            body = flow.response.get_content(strict=False)
        headers = text_fields(flow.response.headers) if flow.response is not None else ()
        try:
            self.writer.record_response(answer, tuple(findings), body=self._body(body), headers=headers,
                                        latency_us=latency_us)
        except AuditUnavailable as exc:  # the writer is closed: only at shutdown
            log.critical("response of %s not recorded: %s", state.event.request_id, exc.reason)

    def _body(self, body: bytes | None) -> bytes | None:
        return body if self.policy.gateway.audit.store_bodies else None


class _RequestIds:
    """32 random hex digits per call, cut from one ``os.urandom`` read per 256 ids: a system call per request saved,
    and a release of the GIL that another thread (an in-process ``AuditWriter``'s) could keep the loop waiting on."""

    def __init__(self) -> None:
        self._pool: Iterator[str] = iter(())

    def __call__(self) -> str:
        for request_id in self._pool:  # a list's iterator hands each id out once, to whichever thread asks
            return request_id
        pool = os.urandom(16 * 256).hex()
        self._pool = iter([pool[start:start + 32] for start in range(32, len(pool), 32)])
        return pool[:32]


_request_id = _RequestIds()


def _verdict(findings: list[Finding]) -> Verdict:
    action = decide(findings)
    return Verdict(action, "; ".join(f.reason for f in findings if f.action == action) if action != "allow" else "")


def _guarded(guard: StreamGuard | McpStreamGuard, event: RequestEvent, status: int) -> ResponseEvent:
    """The answer as far as a stream guard has seen it (an MCP stream's last message, or its status alone)."""
    if isinstance(guard, StreamGuard):
        return guard.result().response
    result = guard.result()
    if result.checks:
        return result.checks[-1].response
    return ResponseEvent(request_id=event.request_id, protocol="mcp", status=status, parse_error=result.error)


def _streamer(guard: StreamGuard | McpStreamGuard) -> Callable[[bytes], list[bytes]]:
    """mitmproxy calls this with every chunk and with ``b""`` at the end; an empty result must be no chunk."""

    def stream(chunk: bytes) -> list[bytes]:
        out = guard.feed(chunk) if chunk else guard.close()
        return [out] if out else []

    return stream


def _raw_request(flow: http.HTTPFlow, fields: list[tuple[str, str]]) -> RawRequest:
    request, headers = flow.request, Headers(fields)
    return RawRequest(request.method, request.scheme, request.pretty_host, request.port, request.path, headers,
                      _content(request, headers))


def _raw_response(response: http.Response) -> RawResponse:
    headers = Headers(text_fields(response.headers))
    return RawResponse(response.status_code, headers, _content(response, headers))


def _content(message: http.Message, headers: Headers) -> bytes:
    """``message.get_content(strict=False)``, which looks Content-Encoding up in mitmproxy's headers again; the
    body as sent when there is none."""
    if not headers.get("content-encoding"):
        return message.raw_content or b""
    return message.get_content(strict=False) or b""


def _make(reply: ErrorReply) -> http.Response:
    return http.Response.make(reply.status, reply.body, reply.headers())
