"""Replaying labelled traces through the gateway's own addons, with a scripted upstream.

Each assistant turn of a trace becomes one flow: the agent's chat request (the conversation up to that
turn) goes through ``AgentAuth`` and ``Gatekeeper.request`` exactly as it would through the proxy, with
the audit log written; unless the gateway answered it, the trace's own assistant message plays the
upstream's answer and goes through ``Gatekeeper.responseheaders`` and ``response``. Nothing about the
pipeline is re-implemented here: what is measured is what the proxy would do.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mitmproxy import connection, http
from mitmproxy.proxy.mode_specs import ProxyMode

from gateway.addons.auth import AgentAuth
from gateway.addons.gatekeeper import STATE, FlowState, Gatekeeper
from gateway.audit.agents import AgentStore, add_agent
from gateway.audit.writer import AuditWriter, WriterConfig
from gateway.detect.mcp_pinning import MemoryPinStore
from gateway.evaluation.datasets import Trace
from gateway.findings import Finding
from gateway.inspection import build_pipeline
from policies.schema import Policy

__all__ = ["Step", "TraceOutcome", "replay_all"]

_MODEL = "eval-model"
_CONCURRENT_TRACES = 16


@dataclass(frozen=True)
class Step:
    """One assistant turn: what the gateway found in the request, whether it answered it, and the response."""

    index: int
    """The assistant message's index in the trace."""
    request_findings: tuple[Finding, ...]
    request_blocked: bool
    response_findings: tuple[Finding, ...] = ()
    response_blocked: bool = False


@dataclass
class TraceOutcome:
    trace: Trace
    steps: list[Step] = field(default_factory=list)


def replay_all(traces: Iterable[Trace], policy: Policy, *, home: Path | None = None) -> list[TraceOutcome]:
    """Every trace through one gateway stack (audit log in ``home``, a temporary folder by default)."""
    with tempfile.TemporaryDirectory(prefix="modelgate-eval-") as tmp:
        return asyncio.run(_replay(list(traces), policy, home or Path(tmp)))


async def _replay(traces: list[Trace], policy: Policy, home: Path) -> list[TraceOutcome]:
    writer = await asyncio.to_thread(AuditWriter.open, None, home=home,
                                     config=WriterConfig(synchronous="NORMAL"))
    try:
        keys = {agent: add_agent(writer.database, agent).key for agent in sorted({t.agent for t in traces})}
        store = AgentStore(writer.database)
        try:
            pipeline = await asyncio.to_thread(build_pipeline, policy, writer.database, MemoryPinStore())
            auth, gatekeeper = AgentAuth(store), Gatekeeper(policy, writer, inspector=pipeline)
            gate = asyncio.Semaphore(_CONCURRENT_TRACES)

            async def one(trace: Trace) -> TraceOutcome:
                async with gate:
                    return await _trace(trace, auth, gatekeeper, keys[trace.agent])

            return await asyncio.gather(*(one(t) for t in traces))
        finally:
            store.close()
    finally:
        await writer.aclose()


async def _trace(trace: Trace, auth: AgentAuth, gatekeeper: Gatekeeper, key: str) -> TraceOutcome:
    outcome = TraceOutcome(trace)
    for index, message in enumerate(trace.messages):
        if message.get("role") != "assistant":
            continue
        flow = _flow(trace, index, key)
        auth.requestheaders(flow)
        await gatekeeper.request(flow)
        state = flow.metadata.get(STATE)
        request_findings = state.findings if isinstance(state, FlowState) else ()
        if flow.response is not None:  # the gateway answered: the upstream was never asked
            outcome.steps.append(Step(index, request_findings, True))
            continue
        flow.response = http.Response.make(200, json.dumps(_completion(message)).encode(),
                                           {"content-type": "application/json"})
        gatekeeper.responseheaders(flow)
        await gatekeeper.response(flow)
        answer = state.response_findings if isinstance(state, FlowState) else ()
        outcome.steps.append(Step(index, request_findings, False, answer, flow.response.status_code == 403))
    return outcome


def _flow(trace: Trace, upto: int, key: str) -> http.HTTPFlow:
    client = connection.Client(peername=("127.0.0.1", 50000), sockname=("127.0.0.1", 8080),
                               proxy_mode=ProxyMode.parse("reverse:http://upstream.invalid"))
    flow = http.HTTPFlow(client, connection.Server(address=("upstream.invalid", 80)))
    body: dict[str, Any] = {"model": _MODEL, "messages": [_unlabelled(m) for m in trace.messages[:upto]]}
    if trace.tools:
        body["tools"] = trace.tools
    flow.request = http.Request.make("POST", "http://upstream.invalid/v1/chat/completions", json.dumps(body), {
        "content-type": "application/json", "authorization": f"Bearer {key}", "x-modelgate-session": _session(trace)})
    return flow


def _unlabelled(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "label"}


def _session(trace: Trace) -> str:
    return "eval-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in trace.id)[:100]


def _completion(message: dict[str, Any]) -> dict[str, Any]:
    reply = _unlabelled(message)
    finish = "tool_calls" if reply.get("tool_calls") else "stop"
    return {"id": "chatcmpl-eval", "object": "chat.completion", "created": 0, "model": _MODEL,
            "choices": [{"index": 0, "message": reply, "finish_reason": finish}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}
